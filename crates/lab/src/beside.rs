//! The steered/unsteered pair side by side: while this worker continues a prompt with
//! its steering, another worker with the same model (a page's helper worker) continues it
//! unsteered ([`Beside`]). Both are the same computation wherever they run, so the answer
//! is the one this worker gives alone.

use std::future::Future;
use std::pin::Pin;

use glassbox_model::Hooks;
use glassbox_model::sampling::Sampling;

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::steer::MAX_STEER_TOKENS;

/// An unsteered continuation coming from another worker: its tokens.
pub type ContinuationElsewhere<'a> = Pin<Box<dyn Future<Output = Result<Vec<u32>>> + 'a>>;

/// Other workers that continue a prompt unsteered.
pub trait Beside {
    /// `ids` continued by `sampling`, nothing steered, on another worker (asked at once);
    /// `None` when none is free.
    fn continuation(&self, ids: &[u32], sampling: &Sampling) -> Option<ContinuationElsewhere<'_>>;
}

/// No other worker: this one continues both.
#[derive(Debug, Clone, Copy)]
pub struct Alone;

impl Beside for Alone {
    fn continuation(
        &self,
        _ids: &[u32],
        _sampling: &Sampling,
    ) -> Option<ContinuationElsewhere<'_>> {
        None
    }
}

impl Lab {
    /// `ids` continued by `sampling` with nothing steered: what a worker beside another
    /// answers ([`Beside`]).
    pub async fn continue_plain(&self, ids: &[u32], sampling: &Sampling) -> Result<Vec<u32>> {
        if sampling.max_new_tokens > MAX_STEER_TOKENS {
            return Err(LabError::Request(format!(
                "a continuation is at most {MAX_STEER_TOKENS} tokens, not {}",
                sampling.max_new_tokens
            )));
        }
        Ok(self
            .continuation(ids, sampling, &[], &Hooks::none())
            .await?
            .tokens)
    }

    /// The unsteered continuation of `ids`: from `elsewhere` when it answers, else here.
    pub(crate) async fn unsteered(
        &self,
        ids: &[u32],
        sampling: &Sampling,
        elsewhere: Option<ContinuationElsewhere<'_>>,
    ) -> Result<Vec<u32>> {
        if let Some(tokens) = elsewhere
            && let Ok(tokens) = tokens.await
        {
            return Ok(tokens);
        }
        self.continue_plain(ids, sampling).await
    }
}
