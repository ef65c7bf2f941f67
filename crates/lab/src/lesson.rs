//! Lessons: a title and steps, each a short text beside one of the page's views (its link)
//! and the claims the text makes about the model, which [`crate::Lab::check_claim`] recomputes,
//! so a rebuilt pack cannot leave a lesson saying what is no longer true. The format is
//! JSON (`docs/lesson-format.md`); a lesson is data from a file, a link or the page, so
//! reading one is capped and checked like any other input.

use serde::{Deserialize, Serialize};

use crate::claim::Claim;
use crate::error::{LabError, Result};

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

/// Whether `view` (a page link without its `#`) is one of the views a step may show.
#[must_use]
pub fn is_step_view(view: &str) -> bool {
    VIEWS.iter().any(|v| view.starts_with(v))
}

/// A lesson.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lesson {
    /// Its title.
    pub title: String,
    /// One sentence on what it teaches.
    #[serde(default, skip_serializing_if = "String::is_empty")]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Claim>,
    /// Something to try, in the same plain text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub try_this: String,
    /// Questions for the student, each with the teacher's answer (shown on request).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<Question>,
}

/// A question a step asks, with its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// The question, in the lesson format's plain text.
    pub question: String,
    /// The answer, shown when the student asks for it.
    pub answer: String,
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
            let questions: usize = step
                .questions
                .iter()
                .map(|q| q.question.len() + q.answer.len())
                .sum();
            if step.text.len() + step.try_this.len() + questions > MAX_STEP_TEXT {
                return refuse(format!(
                    "step {n}'s text is longer than {MAX_STEP_TEXT} bytes"
                ));
            }
            if !is_step_view(&step.view) {
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
