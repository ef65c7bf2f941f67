//! Which engine answers: a primary that fails is dropped for good and the computation
//! runs again on the secondary; what the primary does not support runs on the secondary
//! that once; a bad request is an error from the primary, which stays.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use glassbox_engine::async_test;

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;

use common::tiny;
use glassbox_engine::{
    Active, Attachment, CpuEngine, Engine, EngineError, Fallback, LogitsRead, PassOutput,
    PassRequest, generate,
};
use glassbox_model::sampling::Sampling;
use glassbox_model::{Hooks, KvCache, ModelDims};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The CPU engine, which fails as told once it has answered `answers` passes.
#[derive(Debug)]
struct Flaky {
    engine: CpuEngine,
    answers: Cell<usize>,
    failure: EngineError,
    passes: Cell<usize>,
}

impl Flaky {
    fn new(answers: usize, failure: EngineError) -> Self {
        Self {
            engine: CpuEngine::new(tiny()),
            answers: Cell::new(answers),
            failure,
            passes: Cell::new(0),
        }
    }
}

impl Engine for Flaky {
    type Cache = KvCache;

    fn dims(&self) -> ModelDims {
        self.engine.dims()
    }

    fn attachments(&self) -> &[Attachment] {
        self.engine.attachments()
    }

    fn new_cache(&self) -> KvCache {
        KvCache::default()
    }

    fn cached_len(&self, cache: &KvCache) -> usize {
        cache.len()
    }

    fn pass(
        &self,
        ids: &[u32],
        request: &PassRequest,
        hooks: &mut Hooks,
        cache: Option<&mut KvCache>,
    ) -> impl Future<Output = glassbox_engine::Result<PassOutput>> {
        self.passes.set(self.passes.get() + 1);
        let result = match self.answers.get() {
            0 => Err(self.failure.clone()),
            n => {
                self.answers.set(n - 1);
                self.engine.pass_now(ids, request, hooks, cache)
            }
        };
        std::future::ready(result)
    }
}

/// Which engine answered a pass over `ids`.
async fn who(
    engines: &Fallback<Flaky, CpuEngine>,
    ids: &[u32],
) -> glassbox_engine::Result<&'static str> {
    engines
        .run(async |engine| {
            let request = PassRequest::logits(LogitsRead::Last);
            engine.pass(ids, &request, &mut Hooks::none(), None).await?;
            Ok(match engine {
                Active::Primary(_) => "primary",
                Active::Secondary(_) => "secondary",
            })
        })
        .await
}

#[allow(
    clippy::arc_with_non_send_sync,
    reason = "the test engine counts with a Cell"
)]
fn engines(primary: Flaky) -> (Fallback<Flaky, CpuEngine>, Arc<Flaky>) {
    let primary = Arc::new(primary);
    let engines = Fallback::new(CpuEngine::new(tiny()), ("test", "CPU"));
    engines.start(Arc::clone(&primary));
    (engines, primary)
}

async_test! {
    async fn a_failing_primary_hands_over_for_good() {
        let (engines, primary) = engines(Flaky::new(1, EngineError::Failed("device lost".into())));
        assert_eq!(who(&engines, &[1, 2]).await.unwrap(), "primary");
        // It fails: the same computation is answered by the secondary, and so is the next.
        assert_eq!(who(&engines, &[1, 2]).await.unwrap(), "secondary");
        assert!(engines.primary().is_none());
        let note = engines.note().unwrap();
        assert!(note.contains("test engine failed") && note.contains("device lost"), "{note}");
        assert_eq!(who(&engines, &[1, 2]).await.unwrap(), "secondary");
        assert_eq!(primary.passes.get(), 2, "the primary is not asked again");
    }
}

async_test! {
    async fn what_the_primary_cannot_do_runs_on_the_secondary_once() {
        let (engines, primary) = engines(Flaky::new(0, EngineError::Unsupported("computed edit".into())));
        assert_eq!(who(&engines, &[1, 2]).await.unwrap(), "secondary");
        assert!(engines.primary().is_some() && engines.note().is_none());
        assert_eq!(who(&engines, &[1, 2]).await.unwrap(), "secondary");
        assert_eq!(primary.passes.get(), 2, "the primary is asked every time");
    }
}

async_test! {
    async fn a_bad_request_is_an_error_and_the_primary_stays() {
        let (engines, primary) = engines(Flaky::new(5, EngineError::Failed("never".into())));
        let error = who(&engines, &[]).await.unwrap_err();
        assert!(matches!(error, EngineError::Request(ref m) if m.contains("no tokens")), "{error}");
        assert!(engines.primary().is_some());
        assert_eq!(who(&engines, &[3]).await.unwrap(), "primary");
        assert_eq!(primary.passes.get(), 2);
        engines.stop(None);
        assert_eq!(who(&engines, &[3]).await.unwrap(), "secondary");
    }
}

async_test! {
    async fn generation_that_fails_midway_restarts_on_the_secondary() {
        // The primary answers three decoding steps, then fails: the whole generation is
        // done again on the secondary, with the same result as the secondary alone.
        let (engines, _) = engines(Flaky::new(3, EngineError::Failed("lost".into())));
        let prompt = [1, 5, 9];
        let sampling = Sampling::greedy(8);
        let handed_over = engines
            .run(async |engine| generate(&engine, &prompt, &sampling, &[], &mut Hooks::none()).await)
            .await
            .unwrap();
        let alone = generate(&CpuEngine::new(tiny()), &prompt, &sampling, &[], &mut Hooks::none()).await.unwrap();
        assert_eq!(handed_over, alone);
        assert!(engines.primary().is_none());
    }
}
