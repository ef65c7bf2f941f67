//! Records one forward pass into a [`Plan`]: the same computation, hook points and
//! interventions as `glassbox_model::Gpt2`, on device buffers.

use std::collections::HashMap;

use glassbox_dict::Architecture;
use glassbox_model::{Activation, Edit, Gpt2Config, HookPoint, Hooks, Norm};

use super::dictionary::DeviceDictionary;
use super::request::{FeatureRead, FeatureSet, LogitsRead, PassRequest};
use super::weights::{ColumnChunk, DeviceLayerNorm, DeviceLinear, DeviceWeights};
use crate::GpuError;
use crate::kernels::{KernelId, linear_groups, row_groups};
use crate::plan::{Buf, Plan, Staged};

/// Rows up to which a product runs as a matrix-vector kernel (`GEMV_ROWS` in the WGSL).
const GEMV_ROWS: usize = 8;
/// The largest k the barrier-free top-k keeps in private memory (`MAX_K` in `topk.wgsl`).
const MAX_PRIVATE_K: usize = 64;
/// Row index meaning "no entry" in the top-k kernel's output.
pub(crate) const NONE: u32 = u32::MAX;

/// Activation buffers kept between passes, by role; each grows to the largest pass seen.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    buffers: HashMap<(&'static str, usize), wgpu::Buffer>,
    dummies: Vec<wgpu::Buffer>,
}

impl Scratch {
    /// The buffer for `role` (and `index`, e.g. a block) of at least `floats` values.
    pub(crate) fn get(
        &mut self,
        device: &wgpu::Device,
        role: &'static str,
        index: usize,
        floats: usize,
    ) -> wgpu::Buffer {
        let bytes = (floats.max(4) * 4) as u64;
        if let Some(buffer) = self
            .buffers
            .get(&(role, index))
            .filter(|b| b.size() >= bytes)
        {
            return buffer.clone();
        }
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(role),
            size: bytes.next_multiple_of(256),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.buffers.insert((role, index), buffer.clone());
        buffer
    }

    /// A small buffer for an unused writable slot; writable slots must not alias.
    fn dummy(&mut self, device: &wgpu::Device, index: usize) -> wgpu::Buffer {
        while self.dummies.len() <= index {
            self.dummies
                .push(device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("unused slot"),
                    size: 256,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                }));
        }
        self.dummies[index].clone()
    }
}

/// Where an activation lives: `count` values of `buffer` from element `base`, of
/// TransformerLens shape `dims`; element `i`'s position is `(i / inner) % len`.
#[derive(Debug, Clone)]
struct Site {
    buffer: wgpu::Buffer,
    base: usize,
    dims: Vec<usize>,
    inner: usize,
}

impl Site {
    fn rows(buffer: &wgpu::Buffer, len: usize, width: usize) -> Self {
        Self {
            buffer: buffer.clone(),
            base: 0,
            dims: vec![1, len, width],
            inner: width,
        }
    }

    fn count(&self) -> usize {
        self.dims.iter().product()
    }
}

/// What a recorded pass will find in its readback.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    pub(crate) kept: Vec<(HookPoint, Vec<usize>, Staged)>,
    pub(crate) logits: Option<(LogitsRead, Staged, Option<Staged>)>,
    /// Per read: its index in the request, the read, values and indices.
    pub(crate) features: Vec<(usize, FeatureRead, Staged, Staged)>,
    /// Per column read: its index in the request and its values.
    pub(crate) columns: Vec<(usize, Staged)>,
}

/// The KV cache a pass writes its keys and values into.
pub(crate) struct KvBuffers<'a> {
    pub(crate) keys: &'a [wgpu::Buffer],
    pub(crate) values: &'a [wgpu::Buffer],
}

/// Records one pass.
pub(crate) struct Recorder<'a> {
    pub(crate) device: &'a wgpu::Device,
    pub(crate) config: &'a Gpt2Config,
    pub(crate) weights: &'a DeviceWeights,
    pub(crate) dictionaries: &'a [DeviceDictionary],
    pub(crate) scratch: &'a mut Scratch,
    pub(crate) hooks: &'a Hooks,
    pub(crate) request: &'a PassRequest,
    pub(crate) kv: KvBuffers<'a>,
    /// Positions already in the KV cache.
    pub(crate) offset: usize,
    /// Positions in this pass.
    pub(crate) len: usize,
    /// Blocks to run: all of them, unless nothing after the last one is read.
    pub(crate) blocks: usize,
    pub(crate) plan: Plan,
    pub(crate) layout: Layout,
}

pub(crate) fn dev(buffer: &wgpu::Buffer) -> Buf {
    Buf::Device(buffer.clone())
}

impl Recorder<'_> {
    fn d(&self) -> usize {
        self.config.n_embd
    }

    fn keys(&self) -> usize {
        self.offset + self.len
    }

    fn buffer(&mut self, role: &'static str, index: usize, floats: usize) -> wgpu::Buffer {
        self.scratch.get(self.device, role, index, floats)
    }

    /// Records the whole pass.
    pub(crate) fn record(mut self, ids: &[u32]) -> Result<(Plan, Layout), GpuError> {
        let (len, d) = (self.len, self.d());
        let x = self.buffer("residual", 0, len * d);
        self.embed(ids, &x)?;
        for l in 0..self.blocks {
            self.block(l, &x)?;
        }
        if self.blocks < self.config.n_layer {
            return Ok((self.plan, self.layout));
        }
        let normalized = self.layer_norm(
            &x,
            &self.weights.ln_final.clone(),
            HookPoint::LnFinalScale,
            HookPoint::LnFinalNormalized,
        )?;
        self.logits(&normalized);
        Ok((self.plan, self.layout))
    }

    fn embed(&mut self, ids: &[u32], x: &wgpu::Buffer) -> Result<(), GpuError> {
        let (len, d) = (self.len, self.d());
        let ids_base = self.plan.upload(bytemuck::cast_slice(ids));
        let separate =
            self.hooks.touches(HookPoint::Embed) || self.hooks.touches(HookPoint::PosEmbed);
        let token_out = if separate {
            self.buffer("embed", 0, len * d)
        } else {
            x.clone()
        };
        let chunks = self.weights.token_table.clone();
        let mode = u32::from(separate);
        for chunk in &chunks {
            self.gather(chunk, mode, ids_base, &token_out);
        }
        if !separate {
            return Ok(());
        }
        self.at(HookPoint::Embed, Site::rows(&token_out, len, d))?;
        let positions = self.buffer("position embed", 0, len * d);
        self.gather(&chunks[0], 2, ids_base, &positions);
        self.at(HookPoint::PosEmbed, Site::rows(&positions, len, d))?;
        self.plan.copy(&token_out, x, (len * d * 4) as u64);
        self.add(x, &positions, len * d);
        Ok(())
    }

    /// One dispatch of `embed.wgsl` over `chunk` of the token table into `out`, in `mode`
    /// (0 token + position, 1 token only, 2 position only).
    fn gather(&mut self, chunk: &ColumnChunk, mode: u32, ids_base: u32, out: &wgpu::Buffer) {
        let (len, d) = (self.len, self.d());
        self.plan.dispatch(
            KernelId::Embed,
            &[
                len as u32,
                d as u32,
                self.offset as u32,
                mode,
                chunk.start as u32,
                chunk.cols as u32,
                ids_base,
                0,
            ],
            vec![
                Buf::Uploads,
                dev(&chunk.buffer),
                dev(&self.weights.positions),
                dev(out),
            ],
            linear_groups(len * d),
        );
    }

    fn block(&mut self, l: usize, x: &wgpu::Buffer) -> Result<(), GpuError> {
        let (len, d) = (self.len, self.d());
        let block = self.weights.blocks[l].clone();
        self.at(HookPoint::ResidPre(l), Site::rows(x, len, d))?;
        let ln1 = self.layer_norm(
            x,
            &block.ln_1,
            HookPoint::LnScale(l, Norm::Ln1),
            HookPoint::LnNormalized(l, Norm::Ln1),
        )?;
        let attn_out = self.attention(l, &ln1, &block.qkv, &block.attn_out)?;
        self.at(HookPoint::AttnOut(l), Site::rows(&attn_out, len, d))?;
        self.add(x, &attn_out, len * d);
        self.at(HookPoint::ResidMid(l), Site::rows(x, len, d))?;
        let ln2 = self.layer_norm(
            x,
            &block.ln_2,
            HookPoint::LnScale(l, Norm::Ln2),
            HookPoint::LnNormalized(l, Norm::Ln2),
        )?;

        let d_mlp = block.mlp_in.outputs;
        let hidden = self.buffer("mlp hidden", 0, len * d_mlp);
        let activation = match self.config.activation_function {
            Activation::GeluTanh => 1,
            Activation::GeluErf => 2,
            Activation::Relu => 3,
        };
        let split = self.hooks.touches(HookPoint::MlpPre(l));
        self.linear(
            &ln2,
            0,
            len,
            &block.mlp_in,
            &hidden,
            if split { 0 } else { activation },
        );
        if split {
            self.at(HookPoint::MlpPre(l), Site::rows(&hidden, len, d_mlp))?;
            self.plan.dispatch(
                KernelId::Activate,
                &elementwise_params(len * d_mlp, 0, 0, 1, 1, activation, 0.0, 0, 0),
                vec![
                    dev(&hidden),
                    dev(&block.mlp_in.bias),
                    dev(&block.mlp_in.bias),
                ],
                linear_groups(len * d_mlp),
            );
        }
        self.at(HookPoint::MlpPost(l), Site::rows(&hidden, len, d_mlp))?;
        let mlp_out = self.buffer("mlp out", 0, len * d);
        self.linear(&hidden, 0, len, &block.mlp_out, &mlp_out, 0);
        self.at(HookPoint::MlpOut(l), Site::rows(&mlp_out, len, d))?;
        self.add(x, &mlp_out, len * d);
        self.at(HookPoint::ResidPost(l), Site::rows(x, len, d))
    }

    fn attention(
        &mut self,
        l: usize,
        input: &wgpu::Buffer,
        qkv_weights: &DeviceLinear,
        out_weights: &DeviceLinear,
    ) -> Result<wgpu::Buffer, GpuError> {
        let (len, d, keys) = (self.len, self.d(), self.keys());
        let heads = self.config.n_head;
        let d_head = d / heads;
        let qkv = self.buffer("qkv", 0, len * 3 * d);
        self.linear(input, 0, len, qkv_weights, &qkv, 0);
        let q = self.buffer("q", 0, len * d);
        let z = self.buffer("z", 0, len * d);
        let pattern = self.buffer("pattern", 0, heads * len * keys);
        let edit_scores = self.hooks.touches(HookPoint::AttnScores(l));
        let scores = if edit_scores {
            self.buffer("scores", 0, heads * len * keys)
        } else {
            self.scratch.dummy(self.device, 0)
        };
        let (k_cache, v_cache) = (self.kv.keys[l].clone(), self.kv.values[l].clone());
        let scale = (1.0 / (d_head as f64).sqrt()) as f32;
        let offset = self.offset;
        let params = |fuse: bool| {
            [
                len as u32,
                d as u32,
                offset as u32,
                heads as u32,
                d_head as u32,
                keys as u32,
                scale.to_bits(),
                u32::from(fuse),
            ]
        };
        let buffers = || {
            vec![
                dev(&qkv),
                dev(&q),
                dev(&k_cache),
                dev(&v_cache),
                dev(&scores),
                dev(&pattern),
                dev(&z),
            ]
        };
        self.plan.dispatch(
            KernelId::SplitQkv,
            &params(false),
            buffers(),
            linear_groups(len * d),
        );
        self.at(HookPoint::Q(l), head_site(&q, 0, len, heads, d_head))?;
        self.at(
            HookPoint::K(l),
            head_site(&k_cache, offset * d, len, heads, d_head),
        )?;
        self.at(
            HookPoint::V(l),
            head_site(&v_cache, offset * d, len, heads, d_head),
        )?;
        let per_query = (len as u32, heads as u32);
        if edit_scores {
            self.plan
                .dispatch(KernelId::Scores, &params(false), buffers(), per_query);
            self.at(
                HookPoint::AttnScores(l),
                pattern_site(&scores, len, heads, keys),
            )?;
            self.plan
                .dispatch(KernelId::Softmax, &params(false), buffers(), per_query);
        } else {
            self.plan
                .dispatch(KernelId::Scores, &params(true), buffers(), per_query);
        }
        self.at(
            HookPoint::Pattern(l),
            pattern_site(&pattern, len, heads, keys),
        )?;
        self.plan
            .dispatch(KernelId::Values, &params(false), buffers(), per_query);
        self.at(HookPoint::Z(l), head_site(&z, 0, len, heads, d_head))?;
        let out = self.buffer("attention out", 0, len * d);
        self.linear(&z, 0, len, out_weights, &out, 0);
        Ok(out)
    }

    /// LayerNorm of `x` into the shared output buffer, with its two hooks.
    fn layer_norm(
        &mut self,
        x: &wgpu::Buffer,
        weights: &DeviceLayerNorm,
        scale_hook: HookPoint,
        normalized_hook: HookPoint,
    ) -> Result<wgpu::Buffer, GpuError> {
        let (len, d) = (self.len, self.d());
        // One buffer for every LayerNorm: a dictionary reading one encodes it right away.
        let out = self.buffer("normalized", 0, len * d);
        let scale = self.buffer("scale", 0, len);
        let params = [
            len as u32,
            d as u32,
            (self.config.layer_norm_epsilon as f32).to_bits(),
            0,
        ];
        let buffers = || {
            vec![
                dev(x),
                dev(&weights.weight),
                dev(&weights.bias),
                dev(&out),
                dev(&scale),
            ]
        };
        self.plan
            .dispatch(KernelId::LayerNorm, &params, buffers(), (len as u32, 1));
        let edited = self
            .hooks
            .interventions()
            .iter()
            .any(|i| i.hook == scale_hook);
        self.at(
            scale_hook,
            Site {
                buffer: scale.clone(),
                base: 0,
                dims: vec![1, len, 1],
                inner: 1,
            },
        )?;
        if edited {
            self.plan.dispatch(
                KernelId::LayerNormWithScale,
                &params,
                buffers(),
                (len as u32, 1),
            );
        }
        self.at(normalized_hook, Site::rows(&out, len, d))?;
        Ok(out)
    }

    /// `out[.., col_offset..] = act(input[a_offset..] · W + b)` for `rows` rows.
    fn linear(
        &mut self,
        input: &wgpu::Buffer,
        a_offset: usize,
        rows: usize,
        layer: &DeviceLinear,
        out: &wgpu::Buffer,
        activation: u32,
    ) {
        product(
            &mut self.plan,
            input,
            a_offset,
            rows,
            (&layer.weight, layer.inputs, layer.outputs),
            Some(&layer.bias),
            out,
            (layer.outputs, 0),
            activation,
        );
    }

    fn add(&mut self, x: &wgpu::Buffer, other: &wgpu::Buffer, count: usize) {
        self.plan.dispatch(
            KernelId::Add,
            &elementwise_params(count, 0, 0, 1, 1, 0, 0.0, 0, 0),
            vec![dev(x), dev(other), dev(other)],
            linear_groups(count),
        );
    }

    /// Everything that happens at `hook`: dictionaries reading it encode, steering writing
    /// it applies, then the interventions in order, then the activation is kept if asked.
    fn at(&mut self, hook: HookPoint, site: Site) -> Result<(), GpuError> {
        let dictionaries: Vec<usize> = (0..self.dictionaries.len()).collect();
        for &i in &dictionaries {
            if self.dictionaries[i].input == hook && self.needs_features(i) {
                self.encode(i, &site)?;
            }
        }
        for steering in self.request.steering.clone() {
            if self.dictionaries[steering.dictionary].output == hook {
                self.steer(steering.dictionary, &steering.features, &site);
            }
        }
        let (len, offset) = (self.len, self.offset);
        for intervention in self.hooks.interventions().iter().filter(|i| i.hook == hook) {
            let (op, factor) = match &intervention.edit {
                Edit::Replace(_) => (0, 0.0),
                Edit::Add(_) => (1, 0.0),
                Edit::Scale(f) => (2, *f as f32),
                Edit::Zero => (3, 0.0),
                Edit::Computed(_) => {
                    return Err(GpuError::Unsupported(format!(
                        "a computed edit at {hook} runs on the CPU engine only; on the GPU, \
                         steer through an attached dictionary"
                    )));
                }
            };
            let value = intervention
                .value_for(&site.dims, offset)
                .map_err(|e| GpuError::Shape(e.to_string()))?;
            let other_base = match value {
                Some(v) => self
                    .plan
                    .upload(bytemuck::cast_slice(&super::weights::flat(&v)?)),
                None => 0,
            };
            let mask_base = self.plan.upload(bytemuck::cast_slice(
                &intervention.position_mask(len, offset),
            ));
            let count = site.count();
            self.plan.dispatch(
                KernelId::Edit,
                &elementwise_params(
                    count, site.base, 0, len, site.inner, op, factor, other_base, mask_base,
                ),
                vec![dev(&site.buffer), Buf::Uploads, Buf::Uploads],
                linear_groups(count),
            );
        }
        if self.hooks.keeps(hook) {
            let staged = self
                .plan
                .stage(&site.buffer, (site.base * 4) as u64, site.count() * 4);
            self.layout.kept.push((hook, site.dims, staged));
        }
        Ok(())
    }

    /// The `k` largest entries of each row of `x` `[rows, width]`, largest first, into
    /// the value and index buffers named by `names`.
    fn top_k(
        &mut self,
        x: &wgpu::Buffer,
        rows: usize,
        width: usize,
        k: usize,
        names: (&'static str, &'static str, usize),
    ) -> (wgpu::Buffer, wgpu::Buffer) {
        let values = self.buffer(names.0, names.2, rows * k);
        let indices = self.buffer(names.1, names.2, rows * k);
        if k <= MAX_PRIVATE_K {
            // Segments of about 64 entries: the merge reads segments × k candidates.
            let segments = (width / 64).clamp(1, 256);
            let candidates = self.buffer("top-k candidates", 0, rows * segments * k);
            let candidate_ids = self.buffer("top-k candidate ids", 0, rows * segments * k);
            let params = [rows as u32, width as u32, k as u32, segments as u32];
            let buffers = || {
                vec![
                    dev(x),
                    dev(&candidates),
                    dev(&candidate_ids),
                    dev(&values),
                    dev(&indices),
                ]
            };
            self.plan.dispatch(
                KernelId::SegmentTopK,
                &params,
                buffers(),
                linear_groups(rows * segments),
            );
            self.plan
                .dispatch(KernelId::MergeTopK, &params, buffers(), linear_groups(rows));
        } else {
            let candidates = self.scratch.dummy(self.device, 1);
            let candidate_ids = self.scratch.dummy(self.device, 2);
            self.plan.dispatch(
                KernelId::RowTopK,
                &[rows as u32, width as u32, k as u32, 0],
                vec![
                    dev(x),
                    dev(&candidates),
                    dev(&candidate_ids),
                    dev(&values),
                    dev(&indices),
                ],
                row_groups(rows),
            );
        }
        (values, indices)
    }

    fn needs_features(&self, dictionary: usize) -> bool {
        self.request
            .features
            .iter()
            .any(|r| r.dictionary == dictionary)
            || self
                .request
                .columns
                .iter()
                .any(|r| r.dictionary == dictionary)
            || self
                .request
                .steering
                .iter()
                .any(|s| s.dictionary == dictionary)
    }

    /// Encodes the activation at `site` with dictionary `index` into its activation buffer
    /// and stages the strongest features each read asks for.
    fn encode(&mut self, index: usize, site: &Site) -> Result<(), GpuError> {
        let dictionary = self.dictionaries[index].clone();
        let len = self.len;
        let width = *site.dims.last().unwrap_or(&0);
        if width != dictionary.d_in || site.count() != len * width {
            return Err(GpuError::Shape(format!(
                "a dictionary reading {} values per position is attached to an activation of shape {:?}",
                dictionary.d_in, site.dims
            )));
        }
        let d_sae = dictionary.d_sae;
        let acts = self.buffer("features", index, len * d_sae);
        let relu = matches!(
            dictionary.architecture,
            Architecture::Standard | Architecture::Transcoder
        );
        product(
            &mut self.plan,
            &site.buffer,
            site.base,
            len,
            (&dictionary.w_enc, dictionary.d_in, d_sae),
            Some(&dictionary.b_enc),
            &acts,
            (d_sae, 0),
            if relu { 3 } else { 0 },
        );
        match dictionary.architecture {
            Architecture::Standard | Architecture::Transcoder => {}
            Architecture::JumpReLU => {
                let threshold = dictionary.threshold.clone().ok_or_else(|| {
                    GpuError::Shape("a JumpReLU dictionary without thresholds".to_owned())
                })?;
                self.plan.dispatch(
                    KernelId::JumpRelu,
                    &elementwise_params(len * d_sae, 0, d_sae, 1, 1, 0, 0.0, 0, 0),
                    vec![dev(&acts), dev(&threshold), dev(&threshold)],
                    linear_groups(len * d_sae),
                );
            }
            Architecture::TopK => {
                let k = dictionary.k.clamp(1, d_sae);
                let (values, indices) =
                    self.top_k(&acts, len, d_sae, k, ("top-k values", "top-k indices", 0));
                let candidates = self.scratch.dummy(self.device, 1);
                let candidate_ids = self.scratch.dummy(self.device, 2);
                self.plan.dispatch(
                    KernelId::KeepTopK,
                    &[len as u32, d_sae as u32, k as u32, 0],
                    vec![
                        dev(&acts),
                        dev(&candidates),
                        dev(&candidate_ids),
                        dev(&values),
                        dev(&indices),
                    ],
                    linear_groups(len * d_sae),
                );
            }
        }
        for (r, read) in self.request.features.clone().into_iter().enumerate() {
            if read.dictionary != index || read.top == 0 {
                continue;
            }
            let top = read.top.min(d_sae);
            let (values, indices) = self.top_k(
                &acts,
                len,
                d_sae,
                top,
                ("feature values", "feature indices", r),
            );
            let staged_values = self.plan.stage(&values, 0, len * top * 4);
            let staged_indices = self.plan.stage(&indices, 0, len * top * 4);
            self.layout.features.push((
                r,
                FeatureRead { top, ..read },
                staged_values,
                staged_indices,
            ));
        }
        for (r, read) in self.request.columns.clone().into_iter().enumerate() {
            if read.dictionary != index {
                continue;
            }
            let column = self.buffer("feature column", r, len);
            self.plan.dispatch(
                KernelId::GatherColumn,
                &elementwise_params(len, 0, d_sae, 1, 1, read.feature as u32, 0.0, 0, 0),
                vec![dev(&column), dev(&acts), dev(&acts)],
                linear_groups(len),
            );
            let staged = self.plan.stage(&column, 0, len * 4);
            self.layout.columns.push((r, staged));
        }
        Ok(())
    }

    fn steer(&mut self, index: usize, features: &[(usize, FeatureSet)], site: &Site) {
        let dictionary = self.dictionaries[index].clone();
        let acts = self.buffer("features", index, self.len * dictionary.d_sae);
        let mut edits: Vec<u32> = Vec::with_capacity(features.len() * 4);
        for &(feature, set) in features {
            let (mode, value) = match set {
                FeatureSet::Clamp(v) => (0, v),
                FeatureSet::Scale(v) => (1, v),
            };
            edits.extend([feature as u32, mode, value.to_bits(), 0]);
        }
        let edits_base = self.plan.upload(bytemuck::cast_slice(&edits)) / 4;
        let count = self.len * dictionary.d_out;
        self.plan.dispatch(
            KernelId::Steer,
            &[
                self.len as u32,
                dictionary.d_out as u32,
                dictionary.d_sae as u32,
                features.len() as u32,
                edits_base,
                0,
                0,
                0,
            ],
            vec![
                dev(&site.buffer),
                dev(&acts),
                dev(&dictionary.w_dec),
                Buf::Uploads,
            ],
            linear_groups(count),
        );
    }

    fn logits(&mut self, normalized: &wgpu::Buffer) {
        let (len, d) = (self.len, self.d());
        let vocab = self.config.vocab_size;
        let read = self.request.logits;
        let (rows, a_offset) = match read {
            LogitsRead::None => return,
            LogitsRead::All => (len, 0),
            LogitsRead::Last | LogitsRead::LastTop(_) => (1, (len - 1) * d),
        };
        let logits = self.buffer("logits", 0, rows * vocab);
        for chunk in self.weights.unembedding.clone() {
            product(
                &mut self.plan,
                normalized,
                a_offset,
                rows,
                (&chunk.buffer, d, chunk.cols),
                None,
                &logits,
                (vocab, chunk.start),
                0,
            );
        }
        if let LogitsRead::LastTop(k) = read {
            let k = k.clamp(1, vocab);
            let (values, indices) =
                self.top_k(&logits, 1, vocab, k, ("top logits", "top logit ids", 0));
            let staged_values = self.plan.stage(&values, 0, k * 4);
            let staged_indices = self.plan.stage(&indices, 0, k * 4);
            self.layout.logits =
                Some((LogitsRead::LastTop(k), staged_values, Some(staged_indices)));
        } else {
            let staged = self.plan.stage(&logits, 0, rows * vocab * 4);
            self.layout.logits = Some((read, staged, None));
        }
    }
}

fn head_site(buffer: &wgpu::Buffer, base: usize, len: usize, heads: usize, d_head: usize) -> Site {
    Site {
        buffer: buffer.clone(),
        base,
        dims: vec![1, len, heads, d_head],
        inner: heads * d_head,
    }
}

fn pattern_site(buffer: &wgpu::Buffer, len: usize, heads: usize, keys: usize) -> Site {
    Site {
        buffer: buffer.clone(),
        base: 0,
        dims: vec![1, heads, len, keys],
        inner: keys,
    }
}

/// The uniform block of `elementwise.wgsl`.
#[allow(
    clippy::too_many_arguments,
    reason = "the fields of one uniform block, in order"
)]
fn elementwise_params(
    count: usize,
    base: usize,
    width: usize,
    len: usize,
    inner: usize,
    op: u32,
    factor: f32,
    other_base: u32,
    mask_base: u32,
) -> [u32; 12] {
    [
        count as u32,
        base as u32,
        width as u32,
        len as u32,
        inner as u32,
        op,
        factor.to_bits(),
        other_base,
        mask_base,
        0,
        0,
        0,
    ]
}

/// `out[r * ldc + col_offset + c] = act(a[a_offset + r * k ..] · b + bias)`.
#[allow(
    clippy::too_many_arguments,
    reason = "the product's operands and layout, each named"
)]
pub(crate) fn product(
    plan: &mut Plan,
    a: &wgpu::Buffer,
    a_offset: usize,
    rows: usize,
    (b, k, n): (&wgpu::Buffer, usize, usize),
    bias: Option<&wgpu::Buffer>,
    out: &wgpu::Buffer,
    (ldc, col_offset): (usize, usize),
    activation: u32,
) {
    let flags = u32::from(bias.is_some()) | (activation << 1);
    let params = [
        rows as u32,
        k as u32,
        n as u32,
        ldc as u32,
        col_offset as u32,
        a_offset as u32,
        flags,
        0,
    ];
    let buffers = vec![dev(a), dev(b), dev(out), dev(bias.unwrap_or(b))];
    if rows <= GEMV_ROWS {
        plan.dispatch(
            KernelId::Gemv,
            &params,
            buffers,
            (n.div_ceil(256) as u32, 1),
        );
    } else {
        plan.dispatch(
            KernelId::MatmulTiled,
            &params,
            buffers,
            (n.div_ceil(64) as u32, rows.div_ceil(64) as u32),
        );
    }
}
