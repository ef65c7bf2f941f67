//! "Guess the feature": a feature's top examples from the corpus, and four labels to
//! choose from — its own, and three of features of another part of speech. The round is
//! in the link (`?seed=…&round=…`), so a class gets the same questions; the score stays
//! in this browser.

use glassbox_lab::QuizRound;
use glassbox_web::engine::protocol::{Feature, FeatureView, Quiz};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::copy_link::CopyLink;
use crate::components::status::ReadyGate;
use crate::route::{FeatureQuery, QuizQuery, Route};
use crate::state::{Answer, AnswerView, LinkErrors, use_query, use_request};

/// Where the score is kept in this browser: `right asked`.
const SCORE_KEY: &str = "glassbox-quiz-score";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// Right answers and questions answered so far in this browser.
fn score() -> (u64, u64) {
    let kept = storage().and_then(|s| s.get_item(SCORE_KEY).ok().flatten());
    let mut numbers = kept
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .filter_map(|n| n.parse::<u64>().ok());
    match (numbers.next(), numbers.next()) {
        (Some(right), Some(asked)) if right <= asked => (right, asked),
        _ => (0, 0),
    }
}

fn keep_score(right: bool) -> (u64, u64) {
    let (r, a) = score();
    let now = (r + u64::from(right), a + 1);
    if let Some(s) = storage() {
        let _ = s.set_item(SCORE_KEY, &format!("{} {}", now.0, now.1));
    }
    now
}

/// The quiz view.
#[component]
pub(crate) fn QuizPage() -> Html {
    let (query, link_errors) = use_query::<QuizQuery>();
    let round = use_request(Some(Quiz {
        seed: query.seed,
        round: query.round,
    }));
    let feature = match &round {
        Answer::Done(r) => Some(Feature {
            layer: r.layer,
            feature: r.feature,
        }),
        _ => None,
    };
    let evidence = use_request(feature);
    let chosen = use_state(|| None::<usize>);
    let tally = use_state(score);
    {
        let chosen = chosen.clone();
        use_effect_with(query.clone(), move |_| chosen.set(None));
    }
    let next = QuizQuery {
        seed: query.seed,
        round: query.round + 1,
    };
    html! {
        <ReadyGate>
            <section class="panel">
                <h2>{ format!("Guess the feature · round {}", query.round + 1) }</h2>
                <p class="muted">{ "Here is where one feature of the model fires most in the corpus (the token it fires on is marked). Which label is its own? The other three belong to features that fire on another part of speech." }</p>
                <p><CopyLink /></p>
                <LinkErrors errors={link_errors} />
            </section>
            { AnswerView::new("Drawing a feature…").error_id("quiz-error").show(&round, |r| html! {
                <section class="panel" id="quiz">
                    { AnswerView::new("Fetching its examples…").inline().show(&evidence, |view| examples(view)) }
                    { options(r, &chosen, &tally) }
                    if let Some(choice) = *chosen {
                        { verdict(r, choice, &next) }
                    }
                    <p class="muted" id="quiz-score">{ format!("Your score in this browser: {} of {}", tally.0, tally.1) }</p>
                </section>
            }) }
        </ReadyGate>
    }
}

/// The feature's top examples, each with its token marked.
fn examples(view: &FeatureView) -> Html {
    html! {
        <ol class="quiz-examples" id="quiz-examples">
            { for view.snippets.iter().map(|s| html! {
                <li class="example">{ s.before.clone() }<mark>{ s.token.clone() }</mark>{ s.after.clone() }</li>
            }) }
        </ol>
    }
}

/// The four labels, as buttons until one is chosen.
fn options(
    round: &QuizRound,
    chosen: &UseStateHandle<Option<usize>>,
    tally: &UseStateHandle<(u64, u64)>,
) -> Html {
    html! {
        <div class="quiz-options" role="group" aria-label="labels">
            { for round.options.iter().enumerate().map(|(i, label)| {
                let picked = **chosen;
                let class = match picked {
                    Some(_) if i == round.answer => "quiz-option right",
                    Some(c) if c == i => "quiz-option wrong",
                    _ => "quiz-option",
                };
                let (chosen, tally, answer) = (chosen.clone(), tally.clone(), round.answer);
                let onclick = Callback::from(move |_: MouseEvent| {
                    if chosen.is_none() {
                        chosen.set(Some(i));
                        tally.set(keep_score(i == answer));
                    }
                });
                html! {
                    <button type="button" {class} id={format!("quiz-option-{i}")} disabled={picked.is_some()} {onclick}>{ label.clone() }</button>
                }
            }) }
        </div>
    }
}

/// Whether the choice was right, the feature's own page, and the next round.
fn verdict(round: &QuizRound, choice: usize, next: &QuizQuery) -> Html {
    let right = choice == round.answer;
    html! {
        <p id="quiz-verdict" class={ if right { "status-ok" } else { "status-bad" } }>
            { if right { "Right. ".to_owned() } else { format!("Not this one: it was “{}”. ", round.options[round.answer]) } }
            <Link<Route, FeatureQuery> to={Route::Feature { layer: round.layer, index: round.feature }} query={Some(FeatureQuery::default())}>{ format!("Feature {}/{}: all its evidence", round.layer, round.feature) }</Link<Route, FeatureQuery>>
            { " · " }
            <Link<Route, QuizQuery> to={Route::Quiz} query={Some(next.clone())} classes="quiz-next">{ "Next round →" }</Link<Route, QuizQuery>>
        </p>
    }
}
