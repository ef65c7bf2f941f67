//! What a lesson states about the model, as data a test recomputes: a prediction, the
//! block where the logit lens settles, a head's score, a feature's evidence, where it
//! fires, a steered continuation, the graph's strongest input to a logit, an ablation
//! whose predicted and actual effects agree. [`Lab::check_claim`] answers whether the
//! model bears a claim out and what it does instead.

use glassbox_circuits::NodeKind;
use glassbox_pack::FeatureRecord;
use serde::{Deserialize, Serialize};

use crate::circuit::{LogitChange, NodeEdit};
use crate::error::{LabError, Result};
use crate::head_scores::HeadScoreKind;
use crate::lab::Lab;
use crate::steer::{FeatureSteer, SteerMode, SteerRequest};

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
    /// On `prompt`, head `head` of block `layer` has `score` of at least `at_least`;
    /// if `strongest`, no head of any block has a higher one there.
    HeadScore {
        /// The prompt.
        prompt: String,
        /// The block.
        layer: usize,
        /// The head.
        head: usize,
        /// Which score.
        score: HeadScoreKind,
        /// Its least value.
        at_least: f32,
        /// Whether it is the model's highest.
        #[serde(default)]
        strongest: bool,
    },
    /// On `prompt`, no head of any block has `score` above `at_most`.
    NoHeadAbove {
        /// The prompt.
        prompt: String,
        /// Which score.
        score: HeadScoreKind,
        /// The most any head has.
        at_most: f32,
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
    /// Feature `feature` of block `layer`'s profile ranks `tag` first, with at least
    /// these precision (of its firings, the share on `tag`) and recall (of the corpus's
    /// `tag` tokens, the share it fires on).
    TagEvidence {
        /// The block.
        layer: usize,
        /// The feature.
        feature: usize,
        /// The Brown tag.
        tag: String,
        /// The least precision.
        precision_at_least: f32,
        /// The least recall.
        recall_at_least: f32,
    },
    /// On `prompt`, feature `feature` of block `layer` is active on exactly `tokens` (as
    /// they read, in order) and on no other token.
    FiresOn {
        /// The prompt.
        prompt: String,
        /// The block.
        layer: usize,
        /// The feature.
        feature: usize,
        /// The tokens it fires on.
        tokens: Vec<String>,
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
    /// In `prompt`'s attribution graph, of every feature's direct edge into `token`'s
    /// logit, that of feature `feature` of block `layer` at `position` is the largest.
    StrongestInput {
        /// The prompt.
        prompt: String,
        /// The logit's token, as it reads.
        token: String,
        /// The block.
        layer: usize,
        /// The feature.
        feature: usize,
        /// The token position (from 0).
        position: usize,
    },
    /// Ablating feature `feature` of block `layer` at `position` lowers `token`'s logit
    /// both as the graph predicts and in the model itself, the model's change within a
    /// factor of two of the prediction.
    AblationAgrees {
        /// The prompt.
        prompt: String,
        /// The block.
        layer: usize,
        /// The feature.
        feature: usize,
        /// The token position (from 0).
        position: usize,
        /// The logit's token, as it reads.
        token: String,
    },
    /// Ablating feature `feature` of block `layer` at `position` raises `token`'s logit in
    /// the model itself (the competitor a feature held down).
    AblationRaises {
        /// The prompt.
        prompt: String,
        /// The block.
        layer: usize,
        /// The feature.
        feature: usize,
        /// The token position (from 0).
        position: usize,
        /// The logit's token, as it reads.
        token: String,
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
            Self::HeadScore {
                prompt,
                layer,
                head,
                score,
                at_least,
                strongest,
            } => format!(
                "On “{prompt}”, head {layer}.{head} has a {} score of at least {at_least}{}.",
                score.name(),
                if *strongest {
                    ", the highest of any head"
                } else {
                    ""
                }
            ),
            Self::NoHeadAbove {
                prompt,
                score,
                at_most,
            } => format!(
                "On “{prompt}”, no head has a {} score above {at_most}.",
                score.name()
            ),
            Self::BestTag {
                layer,
                feature,
                tag,
            } => format!(
                "Feature {layer}/{feature} fires on words tagged {tag} more than on any other part of speech."
            ),
            Self::TagEvidence {
                layer,
                feature,
                tag,
                precision_at_least,
                recall_at_least,
            } => format!(
                "Of the corpus tokens where feature {layer}/{feature} fires, at least {:.0}% are tagged {tag}; of the tokens tagged {tag}, it fires on at least {:.0}%.",
                100.0 * precision_at_least,
                100.0 * recall_at_least
            ),
            Self::FiresOn {
                prompt,
                layer,
                feature,
                tokens,
            } => format!(
                "In “{prompt}”, feature {layer}/{feature} fires on {} and on no other token.",
                quoted(tokens)
            ),
            _ => self.describe_intervention(),
        }
    }

    /// [`Claim::describe`] for the claims that change the model: steering, the graph's
    /// inputs, ablations.
    fn describe_intervention(&self) -> String {
        match self {
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
            Self::StrongestInput {
                prompt,
                token,
                layer,
                feature,
                position,
            } => format!(
                "In the graph of “{prompt}”, feature {layer}/{feature} at token {position} has the strongest direct edge of any feature into the logit of “{token}”."
            ),
            Self::AblationAgrees {
                layer,
                feature,
                position,
                token,
                ..
            } => format!(
                "Ablating feature {layer}/{feature} at token {position} lowers the logit of “{token}” as the graph predicts: the model's own change is within a factor of two of the graph's."
            ),
            Self::AblationRaises {
                layer,
                feature,
                position,
                token,
                ..
            } => format!(
                "Ablating feature {layer}/{feature} at token {position} raises the logit of “{token}” in the model itself."
            ),
            _ => String::new(),
        }
    }

    /// The feature whose measured record (from the pack's feature shards) checking this
    /// claim needs, `(block, feature)`.
    #[must_use]
    pub fn record_needed(&self) -> Option<(usize, usize)> {
        match *self {
            Self::TagEvidence { layer, feature, .. } => Some((layer, feature)),
            _ => None,
        }
    }
}

/// Tokens as a list of quoted words.
fn quoted(tokens: &[String]) -> String {
    if tokens.is_empty() {
        return "no token".to_owned();
    }
    tokens
        .iter()
        .map(|t| format!("“{t}”"))
        .collect::<Vec<_>>()
        .join(", ")
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
    /// Recomputes `claim` on this lab's model; `record` is the measured record of the
    /// feature [`Claim::record_needed`] names, when it names one.
    pub async fn check_claim(
        &self,
        claim: &Claim,
        record: Option<&FeatureRecord>,
    ) -> Result<ClaimCheck> {
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
            Claim::HeadScore {
                prompt,
                layer,
                head,
                score,
                at_least,
                strongest,
            } => {
                self.head_score(prompt, (*layer, *head), *score, *at_least, *strongest)
                    .await
            }
            Claim::NoHeadAbove {
                prompt,
                score,
                at_most,
            } => self.no_head_above(prompt, *score, *at_most).await,
            Claim::BestTag {
                layer,
                feature,
                tag,
            } => self.best_tag(*layer, *feature, tag),
            Claim::TagEvidence { .. } => tag_evidence(claim, record),
            Claim::FiresOn {
                prompt,
                layer,
                feature,
                tokens,
            } => self.fires_on(prompt, (*layer, *feature), tokens).await,
            Claim::SteeredContains { .. } => self.steered_contains(claim).await,
            Claim::StrongestInput {
                prompt,
                token,
                layer,
                feature,
                position,
            } => {
                self.strongest_input(prompt, token, (*layer, *feature, *position))
                    .await
            }
            Claim::AblationAgrees {
                prompt,
                layer,
                feature,
                position,
                token,
            } => {
                self.ablation_agrees(prompt, token, (*layer, *feature, *position))
                    .await
            }
            Claim::AblationRaises {
                prompt,
                layer,
                feature,
                position,
                token,
            } => {
                let change = self
                    .ablated_logit(prompt, token, (*layer, *feature, *position))
                    .await?;
                Ok(ClaimCheck {
                    holds: change.actual > 0.0,
                    found: format!("the model changes it by {:+.3}", change.actual),
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

    /// [`Claim::HeadScore`] for head `(block, head)`.
    async fn head_score(
        &self,
        prompt: &str,
        (layer, head): (usize, usize),
        score: HeadScoreKind,
        at_least: f32,
        strongest: bool,
    ) -> Result<ClaimCheck> {
        let all = self.head_scores(prompt, score).await?;
        let this = all
            .iter()
            .find(|(at, _)| *at == (layer, head))
            .ok_or_else(|| LabError::Request(format!("the model has no head {layer}.{head}")))?
            .1;
        let best = strongest_head(&all);
        let Some(value) = this else {
            return Ok(ClaimCheck {
                holds: false,
                found: format!("the prompt defines no {} score", score.name()),
            });
        };
        let is_best = best.is_none_or(|(_, b)| value >= b);
        Ok(ClaimCheck {
            holds: value >= at_least && (!strongest || is_best),
            found: format!(
                "head {layer}.{head} scores {value:.3}; the highest is {}",
                best.map_or_else(String::new, |((l, h), s)| format!("head {l}.{h}'s, {s:.3}"))
            ),
        })
    }

    /// [`Claim::NoHeadAbove`].
    async fn no_head_above(
        &self,
        prompt: &str,
        score: HeadScoreKind,
        at_most: f32,
    ) -> Result<ClaimCheck> {
        let all = self.head_scores(prompt, score).await?;
        let best = strongest_head(&all);
        Ok(ClaimCheck {
            holds: best.is_some_and(|(_, s)| s <= at_most),
            found: best.map_or_else(
                || format!("the prompt defines no {} score", score.name()),
                |((l, h), s)| format!("the highest is head {l}.{h}'s, {s:.3}"),
            ),
        })
    }

    /// [`Claim::BestTag`].
    fn best_tag(&self, layer: usize, feature: usize, tag: &str) -> Result<ClaimCheck> {
        self.check_feature(layer, feature)?;
        let best = self
            .labels
            .layers
            .get(layer)
            .and_then(|entries| entries.get(feature))
            .and_then(|entry| entry.2.clone());
        Ok(ClaimCheck {
            holds: best.as_deref() == Some(tag),
            found: format!(
                "its best tag is {}",
                best.as_deref().unwrap_or("none (no feature data)")
            ),
        })
    }

    /// [`Claim::FiresOn`] for feature `(block, feature)`.
    async fn fires_on(
        &self,
        prompt: &str,
        (layer, feature): (usize, usize),
        tokens: &[String],
    ) -> Result<ClaimCheck> {
        let ids = self.prompt_ids(prompt)?;
        let activations = self.feature_activations(&ids, layer, feature).await?;
        let fired: Vec<String> = ids
            .iter()
            .zip(&activations)
            .filter(|&(_, &a)| a > 0.0)
            .map(|(&t, _)| self.token_text(t))
            .collect();
        Ok(ClaimCheck {
            holds: fired == tokens,
            found: format!("it fires on {}", quoted(&fired)),
        })
    }

    /// Every head's `score` on `prompt`, `((block, head), score)`.
    async fn head_scores(
        &self,
        prompt: &str,
        score: HeadScoreKind,
    ) -> Result<Vec<((usize, usize), Option<f32>)>> {
        Ok(self
            .attention_everywhere(prompt)
            .await?
            .iter()
            .flat_map(|block| {
                block
                    .scores
                    .iter()
                    .enumerate()
                    .map(move |(h, scores)| ((block.layer, h), scores.get(score)))
            })
            .collect())
    }

    /// [`Claim::SteeredContains`].
    async fn steered_contains(&self, claim: &Claim) -> Result<ClaimCheck> {
        let Claim::SteeredContains {
            prompt,
            layer,
            feature,
            clamp,
            tokens,
            text,
        } = claim
        else {
            return Err(LabError::Request("not a steering claim".to_owned()));
        };
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

    /// The graph node of `token`'s logit in `prompt`'s graph, with the graph.
    async fn logit_node(
        &self,
        prompt: &str,
        token: &str,
    ) -> Result<(std::sync::Arc<glassbox_circuits::Graph>, usize)> {
        let (graph, _) = self.attributed(prompt, None).await?;
        let target = graph
            .nodes
            .iter()
            .position(|n| {
                matches!(n.kind, NodeKind::Logit { token: t, .. } if self.token_text(t) == token)
            })
            .ok_or_else(|| {
                LabError::Request(format!(
                    "“{token}” is not among the logits of the graph of “{prompt}”"
                ))
            })?;
        Ok((graph, target))
    }

    /// [`Claim::StrongestInput`] for the feature `(block, feature, position)`.
    async fn strongest_input(
        &self,
        prompt: &str,
        token: &str,
        claimed: (usize, usize, usize),
    ) -> Result<ClaimCheck> {
        let (graph, target) = self.logit_node(prompt, token).await?;
        let strongest = graph
            .feature_edges_into(target)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        Ok(ClaimCheck {
            holds: strongest.is_some_and(|(at, _)| at == claimed),
            found: strongest.map_or_else(
                || "the graph has no feature nodes".to_owned(),
                |((l, f, p), w)| {
                    format!("the strongest is feature {l}/{f} at token {p}, with {w:+.3}")
                },
            ),
        })
    }

    /// How `token`'s logit changes when the feature `(block, feature, position)` is
    /// ablated in `prompt`'s graph.
    async fn ablated_logit(
        &self,
        prompt: &str,
        token: &str,
        (layer, feature, position): (usize, usize, usize),
    ) -> Result<LogitChange> {
        let edit = NodeEdit::Feature {
            layer,
            position,
            feature,
            value: 0.0,
        };
        let changes = self.intervene_node(prompt, None, edit).await?;
        changes
            .into_iter()
            .find(|c| c.text == token)
            .ok_or_else(|| {
                LabError::Request(format!(
                    "“{token}” is not among the logits of the graph of “{prompt}”"
                ))
            })
    }

    /// [`Claim::AblationAgrees`] for the feature `(block, feature, position)`.
    async fn ablation_agrees(
        &self,
        prompt: &str,
        token: &str,
        at: (usize, usize, usize),
    ) -> Result<ClaimCheck> {
        let change = self.ablated_logit(prompt, token, at).await?;
        let (predicted, actual) = (change.predicted, change.actual);
        let ratio = actual / predicted;
        Ok(ClaimCheck {
            holds: predicted < 0.0 && actual < 0.0 && (0.5..=2.0).contains(&ratio),
            found: format!(
                "the graph predicts {predicted:+.3}, the frozen model changes by {:+.3}, the model by {actual:+.3}",
                change.frozen
            ),
        })
    }
}

/// The head with the highest score of `all`, where the prompt defines one.
fn strongest_head(all: &[((usize, usize), Option<f32>)]) -> Option<((usize, usize), f32)> {
    all.iter()
        .filter_map(|&(at, s)| s.map(|s| (at, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// [`Claim::TagEvidence`] on the feature's measured `record`.
fn tag_evidence(claim: &Claim, record: Option<&FeatureRecord>) -> Result<ClaimCheck> {
    let Claim::TagEvidence {
        layer,
        feature,
        tag,
        precision_at_least,
        recall_at_least,
    } = claim
    else {
        return Err(LabError::Request("not a tag-evidence claim".to_owned()));
    };
    let record = record.filter(|r| r.index == *feature).ok_or_else(|| {
        LabError::Request(format!(
            "checking “{}” needs feature {layer}/{feature}'s record",
            claim.describe()
        ))
    })?;
    Ok(match &record.profile.tag {
        Some(best) => ClaimCheck {
            holds: best.key == *tag
                && best.precision >= *precision_at_least
                && best.recall >= *recall_at_least,
            found: format!(
                "its best tag is {}, precision {:.3}, recall {:.3}",
                best.key, best.precision, best.recall
            ),
        },
        None => ClaimCheck {
            holds: false,
            found: "it has no tag profile".to_owned(),
        },
    })
}
