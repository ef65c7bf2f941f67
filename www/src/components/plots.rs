//! Plots drawn as SVG: a histogram, and text shaded by activation.

use yew::prelude::*;

/// Properties of [`Histogram`].
#[derive(Properties, PartialEq)]
pub(crate) struct HistogramProps {
    /// Counts per bin.
    pub(crate) counts: Vec<u32>,
    /// The upper edge of the last bin.
    pub(crate) max: f32,
}

/// Bars of equal-width bins from 0 to `max`, heights on a log scale.
#[component]
pub(crate) fn Histogram(props: &HistogramProps) -> Html {
    let (width, height) = (480.0_f64, 120.0_f64);
    let n = props.counts.len().max(1) as f64;
    let top = props.counts.iter().copied().max().unwrap_or(0).max(1);
    let scale = |c: u32| f64::from(c).ln_1p() / f64::from(top).ln_1p() * (height - 20.0);
    html! {
        <svg class="histogram" viewBox={format!("0 0 {width} {height}")} role="img"
            aria-label="histogram of this feature's activations">
            { for props.counts.iter().enumerate().map(|(i, &c)| {
                let h = scale(c);
                let x = i as f64 * width / n;
                html! {
                    <rect x={format!("{x:.1}")} y={format!("{:.1}", height - 16.0 - h)}
                        width={format!("{:.1}", width / n - 1.0)} height={format!("{h:.1}")}>
                        <title>{ format!("{c} tokens from {:.2} to {:.2}",
                            f64::from(props.max) * i as f64 / n,
                            f64::from(props.max) * (i + 1) as f64 / n) }</title>
                    </rect>
                }
            }) }
            <text x="0" y={format!("{}", height - 2.0)} class="axis">{ "0" }</text>
            <text x={format!("{width}")} y={format!("{}", height - 2.0)} text-anchor="end" class="axis">
                { format!("{:.2}", props.max) }
            </text>
        </svg>
    }
}

/// Properties of [`ShadedTokens`].
#[derive(Properties, PartialEq)]
pub(crate) struct ShadedTokensProps {
    /// Token texts.
    pub(crate) tokens: Vec<String>,
    /// Activation per token.
    pub(crate) activations: Vec<f32>,
    /// The activation that gets full colour.
    pub(crate) max: f32,
    /// A token to outline (the example's own).
    #[prop_or_default]
    pub(crate) focus: Option<usize>,
}

/// Tokens as text, each shaded by its activation (the value shows on hover).
#[component]
pub(crate) fn ShadedTokens(props: &ShadedTokensProps) -> Html {
    let max = props.max.max(1e-6);
    html! {
        <span class="shaded">
            { for props.tokens.iter().zip(&props.activations).enumerate().map(|(i, (text, &a))| {
                let alpha = (a / max).clamp(0.0, 1.0);
                let class = if props.focus == Some(i) { "tok focus" } else { "tok" };
                html! {
                    <span {class} style={format!("--a:{alpha:.3}")} title={format!("{a:.3}")}>
                        { text.replace('\n', "⏎") }
                    </span>
                }
            }) }
        </span>
    }
}
