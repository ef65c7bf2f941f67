//! The default pack as it ships: the trained model and transcoders (kept in f16 in the
//! work folder) written with 8-bit matrices, the model as one GGUF file (`Q8_0`, llama.cpp's
//! GPT-2 layout, tokenizer inside) and each transcoder in the SAELens layout with 8-bit
//! `W_enc`/`W_dec` and their scales; and what those 8 bits cost, measured.

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use glassbox_dict::Dictionary;
use glassbox_model::gguf::TensorType;
use glassbox_model::gguf_split::{outside_or_before_block, split_gguf};
use glassbox_model::gguf_write::GgufVocabulary;
use glassbox_model::{Gpt2, Hooks, Model, gpt2_to_gguf};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::dictionaries::windows;
use crate::error::{BuildError, Result, io};
use crate::quality::{self, QualityOptions};
use crate::transcoder;

/// The shipped model's files within the pack: one GGUF model split in two as llama.cpp's
/// `gguf-split` writes it, the first with block 0, the embeddings, the final norm, the
/// tokenizer and all the metadata, the second with the later blocks, so that a page shows
/// block 0's features before the rest has arrived.
pub const MODEL_GGUF: [&str; 2] = [
    "model/model-00001-of-00002.gguf",
    "model/model-00002-of-00002.gguf",
];

/// The shipped model in one file, as packs before the split held it: split when found.
const MODEL_GGUF_WHOLE: &str = "model/model.gguf";

/// Where the pack records what 8 bits cost.
pub const QUANTIZATION_REPORT: &str = "model/quantization.json";

/// Held-out windows the quantization report compares on.
const REPORT_WINDOWS: usize = 64;

/// Writes `model` (with the tokenizer of `tokenizer_json`) into `staged` as
/// [`MODEL_GGUF`] in `Q8_0`, unless it is there (a whole file from an earlier build is
/// split, its tensors as they are); returns the shipped model as read back.
pub fn model(model: &Gpt2, tokenizer_json: &str, staged: &Path) -> Result<Gpt2> {
    let paths = MODEL_GGUF.map(|path| staged.join(path));
    if !paths.iter().all(|path| path.exists()) {
        let whole_path = staged.join(MODEL_GGUF_WHOLE);
        let whole = if whole_path.exists() {
            std::fs::read(&whole_path).map_err(io(&whole_path))?
        } else {
            let vocabulary = GgufVocabulary::from_tokenizer_json(tokenizer_json)?;
            gpt2_to_gguf(model, "brown", &vocabulary, TensorType::Q8_0)?
        };
        write_split_after_block_0(MODEL_GGUF_WHOLE, &whole, &paths)?;
        if whole_path.exists() {
            std::fs::remove_file(&whole_path).map_err(io(&whole_path))?;
        }
    }
    read_model(staged)
}

/// The shipped model in `staged`.
pub fn read_model(staged: &Path) -> Result<Gpt2> {
    let mut parts = Vec::with_capacity(MODEL_GGUF.len());
    for path in MODEL_GGUF {
        let full = staged.join(path);
        parts.push((path, std::fs::read(&full).map_err(io(&full))?));
    }
    let files: Vec<(&str, &[u8])> = parts.iter().map(|(p, b)| (*p, b.as_slice())).collect();
    let (model, _) = Model::from_gguf_files(&files)?;
    model
        .as_gpt2()
        .cloned()
        .ok_or_else(|| BuildError::Checkpoint(format!("{} is not a GPT-2", MODEL_GGUF[0])))
}

/// Writes each of `trained` into `staged/transcoders/layer_{l}` with 8-bit matrices,
/// unless it is there; returns them as read back.
pub fn transcoders(trained: &[Dictionary], staged: &Path) -> Result<Vec<Dictionary>> {
    trained
        .iter()
        .enumerate()
        .map(|(layer, dictionary)| {
            let folder = staged.join(format!("transcoders/layer_{layer}"));
            if let Ok(shipped) = transcoder::load(&folder) {
                return Ok(shipped);
            }
            let partial = staged.join(format!("transcoders/layer_{layer}.partial"));
            transcoder::save_8bit(dictionary, &partial)?;
            std::fs::rename(&partial, &folder).map_err(io(&folder))?;
            transcoder::load(&folder)
        })
        .collect()
}

/// Writes the GGUF model `whole` (called `name` in errors) split in two to `paths`
/// (`gguf-split`'s `NAME-00001-of-00002.gguf` and `-00002-`): block 0, the embeddings,
/// the final norm, the tokenizer and all the metadata in the first file, the other blocks
/// in the second, so that a page can run block 0 before the rest has arrived.
pub(crate) fn write_split_after_block_0(
    name: &str,
    whole: &[u8],
    paths: &[std::path::PathBuf; 2],
) -> Result<()> {
    let parts = split_gguf(name, whole, outside_or_before_block(1))?;
    for (path, bytes) in paths.iter().zip(&parts) {
        write_atomically(path, bytes)?;
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).map_err(io(&partial))?;
    std::fs::rename(&partial, path).map_err(io(path))
}

/// What shipping in 8 bits changes, on the same held-out windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizationReport {
    /// Held-out tokens predicted.
    pub tokens: usize,
    /// The model's loss in f16, nats per token.
    pub nats_f16: f64,
    /// The shipped model's loss.
    pub nats_8bit: f64,
    /// Mean KL divergence of the shipped model's next-token distribution from the f16
    /// model's, nats per token.
    pub kl_nats: f64,
    /// How often the two models' likeliest next tokens agree.
    pub top1_agreement: f64,
    /// The largest change of any logit.
    pub max_logit_change: f64,
    /// Each block's transcoder: FVU in f16 on the f16 model, and as shipped (8-bit
    /// transcoder on the 8-bit model).
    pub transcoders: Vec<TranscoderFvu>,
}

/// One block's FVU in f16 and as shipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscoderFvu {
    /// The block.
    pub layer: usize,
    /// With the f16 model and transcoder.
    pub fvu_f16: f64,
    /// As shipped.
    pub fvu_8bit: f64,
}

/// Measures [`QuantizationReport`] on up to 64 windows of `window` tokens of `eval_tokens`.
pub fn measure(
    (model_f16, dictionaries_f16): (&Gpt2, &[Dictionary]),
    (model_8bit, dictionaries_8bit): (&Gpt2, &[Dictionary]),
    eval_tokens: &[u32],
    window: usize,
) -> Result<QuantizationReport> {
    let mut sums = LogitSums::default();
    for w in windows(eval_tokens, window + 1, REPORT_WINDOWS) {
        let inputs = Tensor::new(&w[..window], &Device::Cpu)?.unsqueeze(0)?;
        let targets: Vec<u32> = w[1..].to_vec();
        let a = model_f16.forward(&inputs, &mut Hooks::none())?.squeeze(0)?;
        let b = model_8bit
            .forward(&inputs, &mut Hooks::none())?
            .squeeze(0)?;
        sums.add(&a, &b, &targets)?;
    }
    let fvu = |model: &Gpt2, dictionaries: &[Dictionary]| {
        quality::measure(
            &Model::from(model),
            dictionaries,
            eval_tokens,
            QualityOptions {
                window,
                quality_windows: REPORT_WINDOWS,
                loss_windows: 0,
                skip_first: 0,
                training_rows: 0,
            },
            &ProgressBar::hidden(),
        )
    };
    let (f16, shipped) = (
        fvu(model_f16, dictionaries_f16)?,
        fvu(model_8bit, dictionaries_8bit)?,
    );
    let n = sums.tokens.max(1) as f64;
    Ok(QuantizationReport {
        tokens: sums.tokens,
        nats_f16: sums.nats_a / n,
        nats_8bit: sums.nats_b / n,
        kl_nats: sums.kl / n,
        top1_agreement: sums.agree as f64 / n,
        max_logit_change: sums.max_change,
        transcoders: f16
            .layers
            .iter()
            .zip(&shipped.layers)
            .enumerate()
            .map(|(layer, (a, b))| TranscoderFvu {
                layer,
                fvu_f16: a.fvu,
                fvu_8bit: b.fvu,
            })
            .collect(),
    })
}

/// Sums over positions of two models' logits on the same windows.
#[derive(Debug, Default)]
struct LogitSums {
    tokens: usize,
    nats_a: f64,
    nats_b: f64,
    kl: f64,
    agree: usize,
    max_change: f64,
}

impl LogitSums {
    /// Adds `[positions, vocab]` logits `a` (the reference) and `b` with their targets.
    fn add(&mut self, a: &Tensor, b: &Tensor, targets: &[u32]) -> Result<()> {
        let (log_a, log_b) = (
            log_softmax(&a.to_dtype(DType::F64)?)?,
            log_softmax(&b.to_dtype(DType::F64)?)?,
        );
        let kl = (log_a.exp()? * (&log_a - &log_b)?)?.sum(D::Minus1)?;
        self.kl += kl.sum_all()?.to_scalar::<f64>()?;
        let targets_tensor = Tensor::new(targets, &Device::Cpu)?.unsqueeze(1)?;
        self.nats_a -= log_a
            .gather(&targets_tensor, 1)?
            .sum_all()?
            .to_scalar::<f64>()?;
        self.nats_b -= log_b
            .gather(&targets_tensor, 1)?
            .sum_all()?
            .to_scalar::<f64>()?;
        let (top_a, top_b): (Vec<u32>, Vec<u32>) = (
            a.argmax(D::Minus1)?.to_vec1()?,
            b.argmax(D::Minus1)?.to_vec1()?,
        );
        self.agree += top_a.iter().zip(&top_b).filter(|(x, y)| x == y).count();
        let change = f64::from((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?);
        self.max_change = self.max_change.max(change);
        self.tokens += targets.len();
        Ok(())
    }
}

/// `log_softmax` over the last dimension.
fn log_softmax(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?;
    let shifted = x.broadcast_sub(&max)?;
    let log_sum = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(shifted.broadcast_sub(&log_sum)?)
}

#[cfg(test)]
mod tests {
    use glassbox_model::{Activation, Gpt2Config, Gpt2Weights};

    use super::*;

    /// A two-block GPT-2 of width 32 (whole `Q8_0` blocks) in one GGUF file, with a
    /// vocabulary of printable characters.
    fn whole_gguf() -> Vec<u8> {
        let config = Gpt2Config {
            n_layer: 2,
            n_head: 2,
            n_embd: 32,
            n_positions: 16,
            vocab_size: 40,
            layer_norm_epsilon: 1e-5,
            n_inner: None,
            activation_function: Activation::GeluTanh,
        };
        let vocabulary = GgufVocabulary {
            tokens: ('A'..='h').map(String::from).collect(),
            types: vec![1; 40],
            merges: Vec::new(),
            pre: "gpt-2".to_owned(),
            eos: None,
        };
        let model = Gpt2::new(config.clone(), Gpt2Weights::init(&config, 3).unwrap()).unwrap();
        gpt2_to_gguf(&model, "brown", &vocabulary, TensorType::Q8_0).unwrap()
    }

    #[test]
    fn a_staged_model_in_one_file_is_split_once_and_reads_the_same() {
        let staged = std::env::temp_dir().join(format!("glassbox-ship-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staged);
        std::fs::create_dir_all(staged.join("model")).unwrap();
        let whole = whole_gguf();
        std::fs::write(staged.join(MODEL_GGUF_WHOLE), &whole).unwrap();
        let (expected, _) = Model::from_gguf("whole.gguf", &whole).unwrap();
        let expected = expected.as_gpt2().unwrap().clone();
        // The model given is not written: the staged file is what ships.
        let shipped = model(&expected, "not read", &staged).unwrap();
        assert!(!staged.join(MODEL_GGUF_WHOLE).exists());
        let parts = MODEL_GGUF.map(|path| std::fs::read(staged.join(path)).unwrap());
        for (ours, theirs) in shipped
            .weights()
            .named()
            .iter()
            .zip(expected.weights().named())
        {
            assert_eq!(ours.0, theirs.0);
            let (a, b) = (
                ours.1.flatten_all().unwrap(),
                theirs.1.flatten_all().unwrap(),
            );
            assert_eq!(
                a.to_vec1::<f32>().unwrap(),
                b.to_vec1::<f32>().unwrap(),
                "{}",
                ours.0
            );
        }
        // The first file holds block 0 and reads alone as that block's model.
        let (first, _) = Model::from_first_gguf_files(&[(MODEL_GGUF[0], &parts[0])]).unwrap();
        assert_eq!(first.dims().n_layer, 1);
        // Asked again, nothing is written.
        model(&expected, "not read", &staged).unwrap();
        let again = MODEL_GGUF.map(|path| std::fs::read(staged.join(path)).unwrap());
        assert_eq!(again, parts);
        std::fs::remove_dir_all(&staged).unwrap();
    }
}
