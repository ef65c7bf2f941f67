//! Lessons: a title and steps, each a short text beside one of the page's views (its link)
//! and the claims the text makes about the model, which [`Lab::check_claim`] recomputes,
//! so a rebuilt pack cannot leave a lesson saying what is no longer true. The format is
//! JSON (`docs/lesson-format.md`); a lesson is data from a file, a link or the page, so
//! reading one is capped and checked like any other input.

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::steer::{FeatureSteer, SteerMode, SteerRequest};

/// The most bytes a lesson file may have.
pub const MAX_LESSON_BYTES: usize = 256 * 1024;
/// The most steps a lesson may have.
pub const MAX_STEPS: usize = 64;
/// The most bytes of one step's text.
pub const MAX_STEP_TEXT: usize = 8 * 1024;
/// The most claims one step may make.
pub const MAX_CLAIMS: usize = 8;

/// The views a step may show, as its link's path starts.
const VIEWS: [&str; 7] = [
    "/prompt",
    "/feature/",
    "/search",
    "/steer",
    "/circuit",
    "/attention",
    "/lens",
];

/// A lesson.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lesson {
    /// Its title.
    pub title: String,
    /// One sentence on what it teaches.
    #[serde(default)]
    pub summary: String,
    /// The pack it is written for (its manifest's name), whose model its claims are
    /// about.
    pub pack: String,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

/// One step: a text beside a view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Its heading.
    pub title: String,
    /// What the student reads, in the lesson format's plain text: paragraphs separated by
    /// a blank line, `**bold**`, `*emphasis*` and `` `code` `` (never HTML).
    pub text: String,
    /// The view beside it: a link within the page without its `#`, e.g.
    /// `/lens?text=The%20jury%20said`.
    pub view: String,
    /// What the text claims about the model, each checked against it.
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// Something to try, in the same plain text.
    #[serde(default)]
    pub try_this: String,
}

/// A fact about the model a lesson states, checkable on the pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Claim {
    /// After `prompt`, the model's likeliest next token is `token`, with at least
    /// `at_least` probability.
    TopPrediction {
        /// The prompt.
        prompt: String,
        /// The token, as it reads (with its leading space).
        token: String,
        /// The least probability it has.
        at_least: f32,
    },
    /// Read through the logit lens at the prompt's last token, `token` is the likeliest
    /// next token after every block from `from_block` on, and not after the block before.
    LensSettles {
        /// The prompt.
        prompt: String,
        /// The token, as it reads.
        token: String,
        /// The first block after which it leads and stays leading.
        from_block: usize,
    },
    /// Feature `feature` of block `layer`'s best part-of-speech tag (the one its pack's
    /// profile ranks first) is `tag`.
    BestTag {
        /// The block.
        layer: usize,
        /// The feature.
        feature: usize,
        /// The Brown tag, e.g. `CD`.
        tag: String,
    },
    /// Clamping feature `feature` of block `layer` to `clamp` at every position makes the
    /// model's greedy continuation of `prompt` (`tokens` long) contain `text`, which the
    /// unsteered continuation does not.
    SteeredContains {
        /// The prompt.
        prompt: String,
        /// The block.
        layer: usize,
        /// The feature.
        feature: usize,
        /// The activation it is clamped to.
        clamp: f32,
        /// Tokens generated.
        tokens: usize,
        /// What the steered text contains.
        text: String,
    },
}

impl Claim {
    /// The claim in words, as the lesson shows it.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::TopPrediction {
                prompt,
                token,
                at_least,
            } => format!(
                "After “{prompt}”, the model's likeliest next token is “{token}” (at least {:.0}%).",
                100.0 * at_least
            ),
            Self::LensSettles {
                prompt,
                token,
                from_block,
            } => format!(
                "Through the logit lens, “{token}” leads after “{prompt}” from block {from_block} on."
            ),
            Self::BestTag {
                layer,
                feature,
                tag,
            } => format!(
                "Feature {layer}/{feature} fires on words tagged {tag} more than on any other part of speech."
            ),
            Self::SteeredContains {
                prompt,
                layer,
                feature,
                clamp,
                text,
                ..
            } => format!(
                "With feature {layer}/{feature} clamped to {clamp}, the model continues “{prompt}” with “{text}” in its text; without it, it does not."
            ),
        }
    }
}

impl Lesson {
    /// Reads a lesson from JSON, refusing one too large, malformed, or out of the format's
    /// limits, with the reason.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_LESSON_BYTES {
            return Err(LabError::Request(format!(
                "the lesson is {} bytes; at most {MAX_LESSON_BYTES} are read",
                bytes.len()
            )));
        }
        let lesson: Self = serde_json::from_slice(bytes)
            .map_err(|e| LabError::Request(format!("not a lesson: {e}")))?;
        lesson.check()?;
        Ok(lesson)
    }

    /// Checks the lesson against the format's limits.
    pub fn check(&self) -> Result<()> {
        let refuse = |problem: String| Err(LabError::Request(problem));
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return refuse(format!(
                "a lesson has 1 to {MAX_STEPS} steps; this one has {}",
                self.steps.len()
            ));
        }
        for (i, step) in self.steps.iter().enumerate() {
            let n = i + 1;
            if step.text.len() + step.try_this.len() > MAX_STEP_TEXT {
                return refuse(format!(
                    "step {n}'s text is longer than {MAX_STEP_TEXT} bytes"
                ));
            }
            if !VIEWS.iter().any(|v| step.view.starts_with(v)) {
                return refuse(format!(
                    "step {n}'s view {:?} is not one of the page's views ({})",
                    step.view.chars().take(80).collect::<String>(),
                    VIEWS.join(", ")
                ));
            }
            if step.claims.len() > MAX_CLAIMS {
                return refuse(format!("step {n} makes more than {MAX_CLAIMS} claims"));
            }
        }
        Ok(())
    }
}

/// What checking a claim found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimCheck {
    /// Whether the model bears it out.
    pub holds: bool,
    /// What the model does, in words.
    pub found: String,
}

impl Lab {
    /// Recomputes `claim` on this lab's model.
    pub async fn check_claim(&self, claim: &Claim) -> Result<ClaimCheck> {
        match claim {
            Claim::TopPrediction {
                prompt,
                token,
                at_least,
            } => {
                let analysis = self.analyze(prompt, 1, 0).await?;
                let top = analysis
                    .predictions
                    .first()
                    .ok_or_else(|| LabError::Request("no prediction".to_owned()))?;
                Ok(ClaimCheck {
                    holds: top.text == *token && top.probability >= *at_least,
                    found: format!(
                        "the likeliest is “{}” at {:.1}%",
                        top.text,
                        100.0 * top.probability
                    ),
                })
            }
            Claim::LensSettles {
                prompt,
                token,
                from_block,
            } => self.lens_settles(prompt, token, *from_block).await,
            Claim::SteeredContains {
                prompt,
                layer,
                feature,
                clamp,
                tokens,
                text,
            } => {
                let request = SteerRequest {
                    prompt: prompt.clone(),
                    features: vec![FeatureSteer {
                        layer: *layer,
                        feature: *feature,
                        mode: SteerMode::Clamp(*clamp),
                    }],
                    max_tokens: *tokens,
                    temperature: 0.0,
                    seed: 0,
                };
                let result = self.steer(&request).await?;
                Ok(ClaimCheck {
                    holds: result.steered.contains(text.as_str())
                        && !result.baseline.contains(text.as_str()),
                    found: format!(
                        "steered: “{}”; unsteered: “{}”",
                        result.steered, result.baseline
                    ),
                })
            }
            Claim::BestTag {
                layer,
                feature,
                tag,
            } => {
                self.check_feature(*layer, *feature)?;
                let best = self
                    .labels
                    .layers
                    .get(*layer)
                    .and_then(|entries| entries.get(*feature))
                    .and_then(|entry| entry.2.clone());
                Ok(ClaimCheck {
                    holds: best.as_deref() == Some(tag.as_str()),
                    found: format!(
                        "its best tag is {}",
                        best.as_deref().unwrap_or("none (no feature data)")
                    ),
                })
            }
        }
    }

    /// [`Claim::LensSettles`].
    async fn lens_settles(
        &self,
        prompt: &str,
        token: &str,
        from_block: usize,
    ) -> Result<ClaimCheck> {
        let lens = self.logit_lens(prompt, 1).await?;
        // Stage 0 is the embeddings; stage b + 1 is after block b.
        let leaders: Vec<String> = lens
            .cells
            .iter()
            .map(|stage| {
                stage
                    .last()
                    .and_then(|cell| cell.top.first())
                    .map_or_else(String::new, |(text, _)| text.clone())
            })
            .collect();
        let after = |block: usize| leaders.get(block + 1).map(String::as_str);
        let n_layer = leaders.len().saturating_sub(1);
        let stays = (from_block..n_layer).all(|b| after(b) == Some(token));
        let before = from_block
            .checked_sub(1)
            .is_none_or(|b| after(b) != Some(token));
        Ok(ClaimCheck {
            holds: from_block < n_layer && stays && before,
            found: format!(
                "the lens's leader after each block: {}",
                leaders
                    .iter()
                    .skip(1)
                    .map(|t| format!("“{t}”"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}
