//! Attribution on any engine: each engine makes a [`Carrier`] for a prompt, and
//! [`attribute_on`] drives it. The CPU engine's is [`CpuCarrier`]; the GPU engine's is
//! `glassbox_gpu::GpuCarrier`; whichever engine is active gives its own.

use std::future::Future;

use glassbox_engine::{Active, CpuEngine};

use crate::attribute::{AttributionOptions, attribute_with};
use crate::carry::{Carrier, CpuCarrier, Row};
use crate::error::Result;
use crate::frozen::FrozenWeights;
use crate::graph::Graph;
use crate::replacement::Replacement;
use crate::setup::{Setup, Target};

/// An engine that can carry attribution targets back through a prompt's frozen model.
pub trait AttributionEngine {
    /// Its carrier for one prompt.
    type Carrier<'a>: Carrier
    where
        Self: 'a;

    /// A carrier for `setup`'s targets over `replacement`'s prompt (on the model this
    /// engine runs, with each block's transcoder attached as dictionary `l`).
    fn carrier<'a>(
        &'a self,
        setup: &'a Setup,
        replacement: &'a Replacement,
    ) -> impl Future<Output = Result<Self::Carrier<'a>>>;
}

/// The attribution graph of `setup` on `engine`.
pub async fn attribute_on<E: AttributionEngine>(
    engine: &E,
    setup: &Setup,
    replacement: &Replacement,
    options: &AttributionOptions,
) -> Result<Graph> {
    let carrier = engine.carrier(setup, replacement).await?;
    attribute_with(setup, replacement, &carrier, options).await
}

impl AttributionEngine for CpuEngine {
    type Carrier<'a> = CpuCarrier<'a>;

    fn carrier<'a>(
        &'a self,
        setup: &'a Setup,
        replacement: &'a Replacement,
    ) -> impl Future<Output = Result<CpuCarrier<'a>>> {
        let carrier = FrozenWeights::of(self.model())
            .and_then(|weights| CpuCarrier::new(&weights, replacement, &setup.sources));
        std::future::ready(carrier)
    }
}

/// The carrier of whichever engine is active.
#[derive(Debug)]
pub enum ActiveCarrier<P, S> {
    /// The primary engine's.
    Primary(P),
    /// The secondary engine's.
    Secondary(S),
}

impl<P: Carrier, S: Carrier> Carrier for ActiveCarrier<P, S> {
    async fn carry(&self, batch: &[&Target]) -> Result<Vec<Row>> {
        match self {
            Self::Primary(p) => p.carry(batch).await,
            Self::Secondary(s) => s.carry(batch).await,
        }
    }
}

impl<P: AttributionEngine, S: AttributionEngine> AttributionEngine for Active<'_, P, S> {
    type Carrier<'a>
        = ActiveCarrier<P::Carrier<'a>, S::Carrier<'a>>
    where
        Self: 'a;

    async fn carrier<'a>(
        &'a self,
        setup: &'a Setup,
        replacement: &'a Replacement,
    ) -> Result<Self::Carrier<'a>> {
        Ok(match self {
            Active::Primary(p) => ActiveCarrier::Primary(p.carrier(setup, replacement).await?),
            Active::Secondary(s) => ActiveCarrier::Secondary(s.carrier(setup, replacement).await?),
        })
    }
}
