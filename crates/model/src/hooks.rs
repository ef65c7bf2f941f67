//! Hook points with TransformerLens names, and what a forward pass does at them: cache
//! the activation, or change it (replace, add, scale, zero), e.g. to freeze attention
//! patterns and LayerNorm scales for attribution.
//!
//! Activations have TransformerLens shapes with a leading batch axis: `[batch, pos, d]`
//! for the residual stream, `[batch, pos, 1]` for norm scales,
//! `[batch, pos, head, d_head]` for `q` and `z`, `[batch, pos, kv_head, d_head]` for `k`
//! and `v` (as many heads as `q` unless the model groups its queries), and
//! `[batch, head, query_pos, key_pos]` for attention scores and patterns.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use candle_core::{DType, Tensor};

use crate::{Family, ModelError, Result};

/// Which LayerNorm a hook belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Norm {
    /// Before attention: `blocks.{l}.ln1`.
    Ln1,
    /// Before the MLP: `blocks.{l}.ln2`.
    Ln2,
}

/// One place in the forward pass where an activation can be read or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookPoint {
    /// `hook_embed`: the token embeddings.
    Embed,
    /// `hook_pos_embed`: the position embeddings.
    PosEmbed,
    /// `blocks.{l}.hook_resid_pre`: the residual stream entering block `l`.
    ResidPre(usize),
    /// `blocks.{l}.ln{1,2}.hook_scale`: the norm's divisor, `sqrt(var + eps)` for
    /// LayerNorm, `sqrt(mean(x²) + eps)` for `RMSNorm`.
    LnScale(usize, Norm),
    /// `blocks.{l}.ln{1,2}.hook_normalized`: as in TransformerLens, the normalized row
    /// before the gain (and bias): `(x − mean) / scale` for GPT-2's LayerNorm, `x / scale`
    /// for Llama's `RMSNorm`.
    LnNormalized(usize, Norm),
    /// `blocks.{l}.attn.hook_q`.
    Q(usize),
    /// `blocks.{l}.attn.hook_k`.
    K(usize),
    /// `blocks.{l}.attn.hook_v`.
    V(usize),
    /// `blocks.{l}.attn.hook_rot_q`: the queries after the rotary embedding (Llama).
    RotQ(usize),
    /// `blocks.{l}.attn.hook_rot_k`: the keys after the rotary embedding (Llama).
    RotK(usize),
    /// `blocks.{l}.attn.hook_attn_scores`: scaled, masked scores before the softmax.
    AttnScores(usize),
    /// `blocks.{l}.attn.hook_pattern`: attention probabilities.
    Pattern(usize),
    /// `blocks.{l}.attn.hook_z`: each head's weighted values.
    Z(usize),
    /// `blocks.{l}.hook_attn_out`: the attention layer's output.
    AttnOut(usize),
    /// `blocks.{l}.hook_resid_mid`: the residual stream between attention and MLP.
    ResidMid(usize),
    /// `blocks.{l}.mlp.hook_pre`: the MLP's hidden pre-activations (for a gated MLP, the
    /// gate's, before its non-linearity).
    MlpPre(usize),
    /// `blocks.{l}.mlp.hook_pre_linear`: a gated MLP's linear branch (Llama's `up_proj`).
    MlpPreLinear(usize),
    /// `blocks.{l}.mlp.hook_post`: the MLP's hidden activations (for a gated MLP, the
    /// gate's activation times the linear branch).
    MlpPost(usize),
    /// `blocks.{l}.hook_mlp_out`: the MLP's output.
    MlpOut(usize),
    /// `blocks.{l}.hook_resid_post`: the residual stream leaving block `l`.
    ResidPost(usize),
    /// `ln_final.hook_scale`.
    LnFinalScale,
    /// `ln_final.hook_normalized`.
    LnFinalNormalized,
}

impl HookPoint {
    /// The block this hook belongs to, if any.
    #[must_use]
    pub fn layer(&self) -> Option<usize> {
        match *self {
            Self::Embed | Self::PosEmbed | Self::LnFinalScale | Self::LnFinalNormalized => None,
            Self::ResidPre(l)
            | Self::LnScale(l, _)
            | Self::LnNormalized(l, _)
            | Self::Q(l)
            | Self::K(l)
            | Self::V(l)
            | Self::RotQ(l)
            | Self::RotK(l)
            | Self::AttnScores(l)
            | Self::Pattern(l)
            | Self::Z(l)
            | Self::AttnOut(l)
            | Self::ResidMid(l)
            | Self::MlpPre(l)
            | Self::MlpPreLinear(l)
            | Self::MlpPost(l)
            | Self::MlpOut(l)
            | Self::ResidPost(l) => Some(l),
        }
    }

    /// The axis that indexes token positions (the query position for scores and patterns).
    #[must_use]
    pub fn position_axis(&self) -> usize {
        match self {
            Self::AttnScores(_) | Self::Pattern(_) => 2,
            _ => 1,
        }
    }

    /// Every hook point of a model of `family` with `n_layer` blocks, in the order a
    /// forward pass reaches them.
    #[must_use]
    pub fn all(n_layer: usize, family: Family) -> Vec<Self> {
        let llama = family == Family::Llama;
        let mut points = vec![Self::Embed];
        if !llama {
            points.push(Self::PosEmbed);
        }
        for l in 0..n_layer {
            points.extend([
                Self::ResidPre(l),
                Self::LnScale(l, Norm::Ln1),
                Self::LnNormalized(l, Norm::Ln1),
                Self::Q(l),
                Self::K(l),
                Self::V(l),
            ]);
            if llama {
                points.extend([Self::RotQ(l), Self::RotK(l)]);
            }
            points.extend([
                Self::AttnScores(l),
                Self::Pattern(l),
                Self::Z(l),
                Self::AttnOut(l),
                Self::ResidMid(l),
                Self::LnScale(l, Norm::Ln2),
                Self::LnNormalized(l, Norm::Ln2),
                Self::MlpPre(l),
            ]);
            if llama {
                points.push(Self::MlpPreLinear(l));
            }
            points.extend([Self::MlpPost(l), Self::MlpOut(l), Self::ResidPost(l)]);
        }
        points.extend([Self::LnFinalScale, Self::LnFinalNormalized]);
        points
    }

    /// Whether a model of `family` has this hook (its block aside).
    #[must_use]
    pub fn exists_in(&self, family: Family) -> bool {
        match self {
            Self::PosEmbed => family == Family::Gpt2,
            Self::RotQ(_) | Self::RotK(_) | Self::MlpPreLinear(_) => family == Family::Llama,
            _ => true,
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let norm = |n: &Norm| match n {
            Norm::Ln1 => "ln1",
            Norm::Ln2 => "ln2",
        };
        match self {
            Self::Embed => write!(f, "hook_embed"),
            Self::PosEmbed => write!(f, "hook_pos_embed"),
            Self::ResidPre(l) => write!(f, "blocks.{l}.hook_resid_pre"),
            Self::LnScale(l, n) => write!(f, "blocks.{l}.{}.hook_scale", norm(n)),
            Self::LnNormalized(l, n) => write!(f, "blocks.{l}.{}.hook_normalized", norm(n)),
            Self::Q(l) => write!(f, "blocks.{l}.attn.hook_q"),
            Self::K(l) => write!(f, "blocks.{l}.attn.hook_k"),
            Self::V(l) => write!(f, "blocks.{l}.attn.hook_v"),
            Self::RotQ(l) => write!(f, "blocks.{l}.attn.hook_rot_q"),
            Self::RotK(l) => write!(f, "blocks.{l}.attn.hook_rot_k"),
            Self::AttnScores(l) => write!(f, "blocks.{l}.attn.hook_attn_scores"),
            Self::Pattern(l) => write!(f, "blocks.{l}.attn.hook_pattern"),
            Self::Z(l) => write!(f, "blocks.{l}.attn.hook_z"),
            Self::AttnOut(l) => write!(f, "blocks.{l}.hook_attn_out"),
            Self::ResidMid(l) => write!(f, "blocks.{l}.hook_resid_mid"),
            Self::MlpPre(l) => write!(f, "blocks.{l}.mlp.hook_pre"),
            Self::MlpPreLinear(l) => write!(f, "blocks.{l}.mlp.hook_pre_linear"),
            Self::MlpPost(l) => write!(f, "blocks.{l}.mlp.hook_post"),
            Self::MlpOut(l) => write!(f, "blocks.{l}.hook_mlp_out"),
            Self::ResidPost(l) => write!(f, "blocks.{l}.hook_resid_post"),
            Self::LnFinalScale => write!(f, "ln_final.hook_scale"),
            Self::LnFinalNormalized => write!(f, "ln_final.hook_normalized"),
        }
    }
}

impl FromStr for HookPoint {
    type Err = ModelError;

    fn from_str(name: &str) -> Result<Self> {
        let unknown = || {
            ModelError::Hook(format!(
                "unknown hook `{name}`; hooks are named as in TransformerLens, e.g. \
                 `hook_embed`, `blocks.0.hook_resid_pre`, `blocks.0.ln2.hook_normalized`, \
                 `blocks.0.attn.hook_pattern`, `ln_final.hook_normalized`"
            ))
        };
        match name {
            "hook_embed" => return Ok(Self::Embed),
            "hook_pos_embed" => return Ok(Self::PosEmbed),
            "ln_final.hook_scale" => return Ok(Self::LnFinalScale),
            "ln_final.hook_normalized" => return Ok(Self::LnFinalNormalized),
            _ => {}
        }
        let rest = name.strip_prefix("blocks.").ok_or_else(unknown)?;
        let (layer, hook) = rest.split_once('.').ok_or_else(unknown)?;
        if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unknown());
        }
        let l: usize = layer.parse().map_err(|_| unknown())?;
        Ok(match hook {
            "hook_resid_pre" => Self::ResidPre(l),
            "ln1.hook_scale" => Self::LnScale(l, Norm::Ln1),
            "ln1.hook_normalized" => Self::LnNormalized(l, Norm::Ln1),
            "ln2.hook_scale" => Self::LnScale(l, Norm::Ln2),
            "ln2.hook_normalized" => Self::LnNormalized(l, Norm::Ln2),
            "attn.hook_q" => Self::Q(l),
            "attn.hook_k" => Self::K(l),
            "attn.hook_v" => Self::V(l),
            "attn.hook_rot_q" => Self::RotQ(l),
            "attn.hook_rot_k" => Self::RotK(l),
            "attn.hook_attn_scores" => Self::AttnScores(l),
            "attn.hook_pattern" => Self::Pattern(l),
            "attn.hook_z" => Self::Z(l),
            "hook_attn_out" => Self::AttnOut(l),
            "hook_resid_mid" => Self::ResidMid(l),
            "mlp.hook_pre" => Self::MlpPre(l),
            "mlp.hook_pre_linear" => Self::MlpPreLinear(l),
            "mlp.hook_post" => Self::MlpPost(l),
            "hook_mlp_out" => Self::MlpOut(l),
            "hook_resid_post" => Self::ResidPost(l),
            _ => return Err(unknown()),
        })
    }
}

/// What a computed edit sees besides the activation itself.
#[derive(Debug, Clone, Copy)]
pub struct EditContext<'a> {
    /// The activations this pass has kept so far (ask for them with [`Hooks::cache`]);
    /// during cached generation they span every position up to this step.
    pub cached: &'a BTreeMap<HookPoint, Tensor>,
    /// The first position of the activation being edited.
    pub offset: usize,
}

/// A function from an activation (and what the pass has kept so far) to its replacement,
/// e.g. a transcoder's prediction of an MLP's output from the MLP's own input.
pub type EditFn = Arc<dyn Fn(&Tensor, EditContext<'_>) -> Result<Tensor> + Send + Sync>;

/// How an intervention changes an activation.
#[derive(Clone)]
pub enum Edit {
    /// Replace it with this tensor (broadcast to the activation's shape).
    Replace(Tensor),
    /// Add this tensor, e.g. a feature's decoder direction times a strength (steering).
    Add(Tensor),
    /// Multiply it by a number (0 ablates, 2 doubles).
    Scale(f64),
    /// Set it to zero.
    Zero,
    /// Replace it with what a function computes from it, within the same pass.
    Computed(EditFn),
}

impl fmt::Debug for Edit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Replace(t) => f.debug_tuple("Replace").field(t).finish(),
            Self::Add(t) => f.debug_tuple("Add").field(t).finish(),
            Self::Scale(s) => f.debug_tuple("Scale").field(s).finish(),
            Self::Zero => f.write_str("Zero"),
            Self::Computed(_) => f.write_str("Computed(..)"),
        }
    }
}

/// A change to one hook's activation, at some or all positions.
#[derive(Debug, Clone)]
pub struct Intervention {
    /// Where.
    pub hook: HookPoint,
    /// Which token positions (absolute, from 0); `None` means all.
    pub positions: Option<Vec<usize>>,
    /// What.
    pub edit: Edit,
}

impl Intervention {
    /// An intervention at every position.
    #[must_use]
    pub fn everywhere(hook: HookPoint, edit: Edit) -> Self {
        Self {
            hook,
            positions: None,
            edit,
        }
    }

    /// An intervention at the given positions only.
    #[must_use]
    pub fn at(hook: HookPoint, positions: Vec<usize>, edit: Edit) -> Self {
        Self {
            hook,
            positions: Some(positions),
            edit,
        }
    }

    /// Applies the edit to `x`, the activation at positions `offset..offset + len` of the
    /// sequence (`context.offset` > 0 during cached generation).
    ///
    /// A `Replace` or `Add` tensor either broadcasts along the position axis (size 1 or
    /// absent there) or covers positions from 0 onwards, in which case the slice for
    /// these positions is taken.
    ///
    /// An intervention limited to positions none of which this pass covers leaves `x`
    /// as it is (a prompt's edit during cached generation).
    pub fn apply(&self, x: &Tensor, context: EditContext<'_>) -> Result<Tensor> {
        let offset = context.offset;
        let axis = self.hook.position_axis();
        let len = x.dim(axis)?;
        if !self.acts_on(len, offset) {
            return Ok(x.clone());
        }
        let edited = match &self.edit {
            Edit::Zero => x.zeros_like()?,
            Edit::Computed(function) => {
                let value = function(x, context)?;
                if value.dims() != x.dims() {
                    return Err(ModelError::Hook(format!(
                        "a computed edit at {} returned shape {:?} for an activation of shape {:?}",
                        self.hook,
                        value.dims(),
                        x.dims()
                    )));
                }
                value.to_dtype(x.dtype())?
            }
            Edit::Scale(factor) => x.affine(*factor, 0.0)?,
            Edit::Replace(value) => self
                .fit(value, x.dims(), axis, offset)?
                .to_dtype(x.dtype())?
                .broadcast_as(x.shape())?
                .contiguous()?,
            Edit::Add(value) => x.broadcast_add(
                &self
                    .fit(value, x.dims(), axis, offset)?
                    .to_dtype(x.dtype())?,
            )?,
        };
        if self.positions.is_none() {
            return Ok(edited);
        }
        let mask = self.position_mask(len, offset);
        let mut mask_shape = vec![1; x.rank()];
        mask_shape[axis] = len;
        // A select, not a blend: masked attention scores are -inf, and -inf · 0 is NaN.
        let mask: Vec<u8> = mask.iter().map(|&m| u8::from(m > 0.0)).collect();
        let mask = Tensor::from_vec(mask, mask_shape, x.device())?.broadcast_as(x.shape())?;
        Ok(mask.where_cond(&edited, x)?)
    }

    /// Whether this intervention changes any of the `len` positions from `offset`: an
    /// intervention at some positions does nothing in a pass that covers none of them.
    #[must_use]
    pub fn acts_on(&self, len: usize, offset: usize) -> bool {
        self.positions
            .as_deref()
            .is_none_or(|positions| positions.iter().any(|p| (offset..offset + len).contains(p)))
    }

    /// 1 at each of the `len` positions from `offset` that this intervention changes, 0
    /// at the others.
    #[must_use]
    pub fn position_mask(&self, len: usize, offset: usize) -> Vec<f32> {
        position_mask(self.positions.as_deref(), len, offset)
    }

    /// For `Replace` and `Add`: the value, in f32, broadcast to an activation of shape
    /// `dims` at positions `offset..` (what another engine uploads); `None` for the other
    /// edits.
    pub fn value_for(&self, dims: &[usize], offset: usize) -> Result<Option<Tensor>> {
        let (Edit::Replace(value) | Edit::Add(value)) = &self.edit else {
            return Ok(None);
        };
        let axis = self.hook.position_axis();
        let fitted = self.fit(value, dims, axis, offset)?.to_dtype(DType::F32)?;
        Ok(Some(fitted.broadcast_as(dims)?.contiguous()?))
    }

    /// `value` cut to positions `offset..offset + len` when it spans positions.
    fn fit(&self, value: &Tensor, dims: &[usize], axis: usize, offset: usize) -> Result<Tensor> {
        let value = value.clone();
        if value.rank() != dims.len() {
            return Ok(value);
        }
        let len = dims[axis];
        let have = value.dim(axis)?;
        if have == 1 || (have == len && offset == 0) {
            return Ok(value);
        }
        if have >= offset + len {
            return Ok(value.narrow(axis, offset, len)?);
        }
        Err(ModelError::Hook(format!(
            "the value for {} covers {have} positions, but positions {offset}..{} were asked for",
            self.hook,
            offset + len
        )))
    }
}

/// 1 at each of the `len` positions from `offset` that are among `positions` (all of them
/// when `None`), 0 at the others: where a change at absolute positions applies in a pass.
#[must_use]
pub fn position_mask(positions: Option<&[usize]>, len: usize, offset: usize) -> Vec<f32> {
    let Some(positions) = positions else {
        return vec![1.0; len];
    };
    let mut mask = vec![0_f32; len];
    for &p in positions {
        if let Some(slot) = p.checked_sub(offset).and_then(|i| mask.get_mut(i)) {
            *slot = 1.0;
        }
    }
    mask
}

/// What one forward pass does at its hook points: which activations to keep, and which
/// interventions to apply. After the pass it holds the kept activations.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    cache_all: bool,
    to_cache: Vec<HookPoint>,
    interventions: Vec<Intervention>,
    cache: BTreeMap<HookPoint, Tensor>,
}

impl Hooks {
    /// No caching, no interventions: a plain forward pass.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Keeps the activation at `hook` (after any intervention there).
    #[must_use]
    pub fn cache(mut self, hook: HookPoint) -> Self {
        self.to_cache.push(hook);
        self
    }

    /// Keeps every activation.
    #[must_use]
    pub fn cache_everything(mut self) -> Self {
        self.cache_all = true;
        self
    }

    /// Adds an intervention; several at one hook apply in the order added.
    #[must_use]
    pub fn intervene(mut self, intervention: Intervention) -> Self {
        self.interventions.push(intervention);
        self
    }

    /// Freezes every attention pattern and LayerNorm scale at its value in `cache` (a
    /// cache of a run on the same tokens that kept them all): the forward pass becomes
    /// linear in the residual stream, as attribution needs.
    pub fn freeze_attention_and_norms(
        mut self,
        cache: &BTreeMap<HookPoint, Tensor>,
    ) -> Result<Self> {
        let frozen: Vec<_> = cache
            .iter()
            .filter(|(hook, _)| {
                matches!(
                    hook,
                    HookPoint::Pattern(_) | HookPoint::LnScale(..) | HookPoint::LnFinalScale
                )
            })
            .map(|(hook, value)| Intervention::everywhere(*hook, Edit::Replace(value.clone())))
            .collect();
        if frozen.is_empty() {
            return Err(ModelError::Hook(
                "nothing to freeze: the cache holds no attention patterns or LayerNorm scales"
                    .to_owned(),
            ));
        }
        self.interventions.extend(frozen);
        Ok(self)
    }

    /// Runs `pass` with `first` applied before this pass's own interventions at each hook
    /// (an engine reading or steering through a dictionary there), then takes them out
    /// again: the caller's hooks come back as they were, with what the pass kept.
    pub fn with_first<R>(
        &mut self,
        first: Vec<Intervention>,
        pass: impl FnOnce(&mut Self) -> R,
    ) -> R {
        let added = first.len();
        self.interventions.splice(0..0, first);
        let result = pass(self);
        self.interventions.drain(..added);
        result
    }

    /// The interventions this pass applies.
    #[must_use]
    pub fn interventions(&self) -> &[Intervention] {
        &self.interventions
    }

    /// The activations kept so far, by hook.
    #[must_use]
    pub fn cached(&self) -> &BTreeMap<HookPoint, Tensor> {
        &self.cache
    }

    /// Takes the kept activations out, leaving the cache empty.
    pub fn take_cache(&mut self) -> BTreeMap<HookPoint, Tensor> {
        std::mem::take(&mut self.cache)
    }

    /// Whether this pass keeps the activation at `hook`.
    #[must_use]
    pub fn keeps(&self, hook: HookPoint) -> bool {
        self.cache_all || self.to_cache.contains(&hook)
    }

    /// Whether anything reads or changes `hook` in this pass.
    #[must_use]
    pub fn touches(&self, hook: HookPoint) -> bool {
        self.keeps(hook) || self.interventions.iter().any(|i| i.hook == hook)
    }

    /// Stores `x` as the kept activation at `hook` for positions from `offset` (appending
    /// along the position axis during cached generation). For engines that compute the
    /// activations elsewhere and hand them back.
    pub fn keep(&mut self, hook: HookPoint, x: Tensor, offset: usize) -> Result<()> {
        let kept = match self.cache.remove(&hook) {
            // During cached generation, each step appends its positions.
            Some(earlier) if offset > 0 => Tensor::cat(&[&earlier, &x], hook.position_axis())?,
            _ => x,
        };
        self.cache.insert(hook, kept.to_dtype(DType::F32)?);
        Ok(())
    }

    /// Checks every hook named against a model of `family` with `n_layer` blocks.
    pub fn validate(&self, n_layer: usize, family: Family) -> Result<()> {
        let named = self
            .to_cache
            .iter()
            .chain(self.interventions.iter().map(|i| &i.hook));
        for hook in named {
            if hook.layer().is_some_and(|l| l >= n_layer) {
                return Err(ModelError::Hook(format!(
                    "{hook} does not exist: the model has {n_layer} blocks"
                )));
            }
            if !hook.exists_in(family) {
                return Err(ModelError::Hook(format!(
                    "{hook} does not exist in a {family} model"
                )));
            }
        }
        Ok(())
    }

    /// Runs the interventions at `hook` on `x` (positions from `offset`), keeps the result
    /// if asked, and returns it.
    pub(crate) fn at(&mut self, hook: HookPoint, x: Tensor, offset: usize) -> Result<Tensor> {
        let mut x = x;
        for intervention in self.interventions.iter().filter(|i| i.hook == hook) {
            let context = EditContext {
                cached: &self.cache,
                offset,
            };
            x = intervention.apply(&x, context)?;
        }
        if self.keeps(hook) {
            self.keep(hook, x.clone(), offset)?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for family in [Family::Gpt2, Family::Llama] {
            for hook in HookPoint::all(3, family) {
                let name = hook.to_string();
                assert_eq!(name.parse::<HookPoint>().unwrap(), hook, "{name}");
                assert!(hook.exists_in(family), "{name}");
            }
        }
        assert_eq!(HookPoint::all(2, Family::Gpt2).len(), 2 + 2 * 17 + 2);
        assert_eq!(HookPoint::all(2, Family::Llama).len(), 1 + 2 * 20 + 2);
    }

    #[test]
    fn computed_edits_see_the_pass_and_must_keep_the_shape() {
        let cpu = &candle_core::Device::Cpu;
        let x = Tensor::ones((1, 3, 2), DType::F32, cpu).unwrap();
        let mut cached = BTreeMap::new();
        cached.insert(HookPoint::Embed, (&x * 5.0).unwrap());
        let context = EditContext {
            cached: &cached,
            offset: 0,
        };
        let add_embed = Intervention::at(
            HookPoint::MlpOut(0),
            vec![1],
            Edit::Computed(Arc::new(|x: &Tensor, c: EditContext<'_>| {
                Ok((x + &c.cached[&HookPoint::Embed])?)
            })),
        );
        let edited: Vec<Vec<f32>> = add_embed
            .apply(&x, context)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2()
            .unwrap();
        assert_eq!(edited, vec![vec![1.0, 1.0], vec![6.0, 6.0], vec![1.0, 1.0]]);
        let wrong = Intervention::everywhere(
            HookPoint::MlpOut(0),
            Edit::Computed(Arc::new(|x: &Tensor, _: EditContext<'_>| {
                Ok(x.narrow(1, 0, 1)?)
            })),
        );
        let error = wrong.apply(&x, context).unwrap_err().to_string();
        assert!(error.contains("computed edit"), "{error}");
        assert_eq!(format!("{:?}", wrong.edit), "Computed(..)");
    }

    /// A prompt's replacement at its positions applies in the prompt's pass and leaves a
    /// later cached pass, which covers none of them, as it is (its value has no rows
    /// there).
    #[test]
    fn an_edit_at_positions_a_pass_does_not_cover_does_nothing() {
        let cpu = &candle_core::Device::Cpu;
        let cached = BTreeMap::new();
        let context = |offset| EditContext {
            cached: &cached,
            offset,
        };
        let prompt = Tensor::zeros((1, 3, 2), DType::F32, cpu).unwrap();
        let frozen = Intervention::at(
            HookPoint::MlpOut(0),
            vec![0, 1, 2],
            Edit::Replace(Tensor::ones((1, 3, 2), DType::F32, cpu).unwrap()),
        );
        assert!(frozen.acts_on(3, 0) && frozen.acts_on(1, 2) && !frozen.acts_on(1, 3));
        let applied = |x: &Tensor, offset| -> Vec<f32> {
            let edited = frozen.apply(x, context(offset)).unwrap();
            edited.flatten_all().unwrap().to_vec1().unwrap()
        };
        assert_eq!(applied(&prompt, 0), vec![1.0; 6]);
        let next = Tensor::zeros((1, 1, 2), DType::F32, cpu).unwrap();
        assert_eq!(applied(&next, 3), vec![0.0; 2]);
    }

    #[test]
    fn bad_names_are_explained() {
        for name in [
            "blocks.x.hook_resid_pre",
            "blocks.0.hook_nothing",
            "resid",
            "blocks.-1.hook_z",
            "blocks..hook_resid_pre",
        ] {
            let error = name.parse::<HookPoint>().unwrap_err().to_string();
            assert!(error.contains("unknown hook"), "{name}: {error}");
        }
    }
}
