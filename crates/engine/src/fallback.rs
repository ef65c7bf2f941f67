//! Which engine answers, and what happens when it fails — written once for every
//! computation: a primary engine (the GPU) answers while it runs; the secondary (the CPU)
//! answers otherwise. A primary that fails is dropped for good and the computation runs
//! again on the secondary; what the primary does not support runs on the secondary that
//! once; a request that no engine can answer is an error from the first.

use std::future::Future;
use std::sync::{Arc, Mutex};

use glassbox_model::{Hooks, ModelDims};

use crate::engine::{Attachment, Engine};
use crate::error::{EngineError, Result, WithEngineError};
use crate::lock::lock;
use crate::request::{PassOutput, PassRequest};

/// A primary engine while it runs, and the secondary behind it.
#[derive(Debug)]
pub struct Fallback<P, S> {
    primary: Mutex<Option<Arc<P>>>,
    secondary: S,
    note: Mutex<Option<String>>,
    names: (&'static str, &'static str),
}

/// The engine one attempt of a computation runs on.
#[derive(Debug)]
pub enum Active<'a, P, S> {
    /// The primary engine.
    Primary(&'a P),
    /// The secondary engine.
    Secondary(&'a S),
}

impl<P, S> Clone for Active<'_, P, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P, S> Copy for Active<'_, P, S> {}

/// The KV cache of whichever engine runs.
#[derive(Debug)]
pub enum ActiveCache<P, S> {
    /// The primary engine's.
    Primary(P),
    /// The secondary engine's.
    Secondary(S),
}

impl<P, S> Fallback<P, S> {
    /// `secondary` alone, until a primary is started; `names` (e.g. `("GPU", "CPU")`)
    /// are how notes call the two.
    pub fn new(secondary: S, names: (&'static str, &'static str)) -> Self {
        Self {
            primary: Mutex::new(None),
            secondary,
            note: Mutex::new(None),
            names,
        }
    }

    /// The secondary engine.
    pub fn secondary(&self) -> &S {
        &self.secondary
    }

    /// The primary engine, while it runs.
    pub fn primary(&self) -> Option<Arc<P>> {
        lock(&self.primary).clone()
    }

    /// Makes `primary` answer from now on.
    pub fn start(&self, primary: Arc<P>) {
        *lock(&self.primary) = Some(primary);
        *lock(&self.note) = None;
    }

    /// Lets the secondary answer from now on; `note`, if given, says why.
    pub fn stop(&self, note: Option<String>) {
        *lock(&self.primary) = None;
        *lock(&self.note) = note;
    }

    /// Why the primary does not answer, when it was stopped for a reason.
    pub fn note(&self) -> Option<String> {
        lock(&self.note).clone()
    }

    /// Runs `computation` on the primary engine if one runs, else on the secondary; a
    /// failure of the primary hands the computation (and everything after it) to the
    /// secondary, and is kept in [`Self::note`].
    pub async fn run<T, E: WithEngineError>(
        &self,
        computation: impl AsyncFn(Active<'_, P, S>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        if let Some(primary) = self.primary() {
            match computation(Active::Primary(&primary)).await {
                Err(error) => match error.engine_error() {
                    Some(EngineError::Failed(reason)) => {
                        let (primary, secondary) = self.names;
                        self.stop(Some(format!(
                            "the {primary} engine failed and the {secondary} engine took over: {reason}"
                        )));
                    }
                    Some(EngineError::Unsupported(_)) => {}
                    _ => return Err(error),
                },
                answer => return answer,
            }
        }
        computation(Active::Secondary(&self.secondary)).await
    }
}

fn mismatch() -> EngineError {
    EngineError::Request("a KV cache of another engine".to_owned())
}

impl<P: Engine, S: Engine> Engine for Active<'_, P, S> {
    type Cache = ActiveCache<P::Cache, S::Cache>;

    fn dims(&self) -> ModelDims {
        match self {
            Self::Primary(p) => p.dims(),
            Self::Secondary(s) => s.dims(),
        }
    }

    fn attachments(&self) -> &[Attachment] {
        match self {
            Self::Primary(p) => p.attachments(),
            Self::Secondary(s) => s.attachments(),
        }
    }

    fn new_cache(&self) -> Self::Cache {
        match self {
            Self::Primary(p) => ActiveCache::Primary(p.new_cache()),
            Self::Secondary(s) => ActiveCache::Secondary(s.new_cache()),
        }
    }

    fn cached_len(&self, cache: &Self::Cache) -> usize {
        match (self, cache) {
            (Self::Primary(p), ActiveCache::Primary(c)) => p.cached_len(c),
            (Self::Secondary(s), ActiveCache::Secondary(c)) => s.cached_len(c),
            _ => 0,
        }
    }

    fn pass(
        &self,
        ids: &[u32],
        request: &PassRequest,
        hooks: &mut Hooks,
        cache: Option<&mut Self::Cache>,
    ) -> impl Future<Output = Result<PassOutput>> {
        let engine = *self;
        async move {
            match (engine, cache) {
                (Self::Primary(p), None) => p.pass(ids, request, hooks, None).await,
                (Self::Primary(p), Some(ActiveCache::Primary(c))) => {
                    p.pass(ids, request, hooks, Some(c)).await
                }
                (Self::Secondary(s), None) => s.pass(ids, request, hooks, None).await,
                (Self::Secondary(s), Some(ActiveCache::Secondary(c))) => {
                    s.pass(ids, request, hooks, Some(c)).await
                }
                _ => Err(mismatch()),
            }
        }
    }
}
