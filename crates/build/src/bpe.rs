//! The tokenizer: byte-level BPE, as GPT-2's, trained on the training documents only.
//!
//! Vocabulary size 8192 (see `VOCAB_SIZE`): the corpus has about 1.2 M words in some 50 k
//! word types. 8192 tokens keep the few thousand frequent words whole and split rarer ones
//! into pieces that each occur often enough to learn an embedding, at about 1.3 tokens per
//! word; the tied embedding stays a modest share of a 4-layer, 256-wide model.

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, NormalizerWrapper, TokenizerBuilder, TokenizerImpl};

use crate::corpus::{Document, Split};
use crate::error::{BuildError, Result};

/// Tokens in the vocabulary, `<|endoftext|>` included.
pub const VOCAB_SIZE: usize = 8192;
/// The document separator, id 0.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Trains the tokenizer on the training split and returns its `tokenizer.json`.
pub fn train(documents: &[Document]) -> Result<String> {
    let fail = |e: tokenizers::Error| BuildError::Tokenizer(e.to_string());
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(VOCAB_SIZE)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tokenizer: TokenizerImpl<BPE, NormalizerWrapper, ByteLevel, ByteLevel, ByteLevel> =
        TokenizerBuilder::new()
            .with_model(BPE::default())
            .with_normalizer(None)
            .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
            .with_post_processor(Some(ByteLevel::new(false, true, true)))
            .with_decoder(Some(ByteLevel::new(false, true, true)))
            .build()
            .map_err(fail)?;
    let texts = documents
        .iter()
        .filter(|d| d.split == Split::Train)
        .map(|d| d.text.as_str());
    tokenizer.train(&mut trainer, texts).map_err(fail)?;
    tokenizer.to_string(false).map_err(fail)
}
