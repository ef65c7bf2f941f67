//! A text box for a value the link holds (a prompt, a search, a steering list): what is
//! typed stays as a draft across re-renders until it is committed (Enter, or leaving the
//! box), and the box shows the link's value again whenever that value changes.
//!
//! A box bound straight to the link's value loses what is being typed: yew sets a bound
//! `value` back on every render, and a view re-renders whenever the engine reports
//! progress or an answer arrives.

use web_sys::{EventTarget, HtmlInputElement, HtmlTextAreaElement};
use yew::prelude::*;

/// The box's properties: the committed value, where a commit goes, and the attributes the
/// pages set on their boxes.
#[derive(Properties, PartialEq)]
pub(crate) struct TextFieldProps {
    /// The committed value (the link's).
    pub value: AttrValue,
    /// Called with the box's text when it is committed.
    pub on_commit: Callback<String>,
    #[prop_or_default]
    pub id: Option<AttrValue>,
    #[prop_or_default]
    pub class: Classes,
    /// The accessible name, where no `<label>` wraps the box.
    #[prop_or_default]
    pub label: Option<AttrValue>,
    #[prop_or_default]
    pub placeholder: Option<AttrValue>,
    /// The input's `type` (`text`, `search`, `number`); ignored for a text area.
    #[prop_or(AttrValue::Static("text"))]
    pub kind: AttrValue,
    /// A text area of this many rows instead of a one-line box.
    #[prop_or_default]
    pub rows: Option<u32>,
    #[prop_or_default]
    pub min: Option<AttrValue>,
    #[prop_or_default]
    pub max: Option<AttrValue>,
}

/// A text box that keeps its draft (see the module's doc).
#[component]
pub(crate) fn TextField(props: &TextFieldProps) -> Html {
    // The draft and the committed value it was typed over: a draft typed over another
    // value is stale (the link changed since) and the link's value shows instead.
    let draft = use_state(|| None::<(AttrValue, String)>);
    let shown = match &*draft {
        Some((over, typed)) if *over == props.value => typed.clone(),
        _ => props.value.to_string(),
    };
    let oninput = {
        let (draft, over, area) = (draft.clone(), props.value.clone(), props.rows.is_some());
        Callback::from(move |event: InputEvent| {
            let typed = text_of(event.target(), area);
            draft.set(Some((over.clone(), typed)));
        })
    };
    let onchange = {
        let (commit, area) = (props.on_commit.clone(), props.rows.is_some());
        Callback::from(move |event: Event| {
            commit.emit(text_of(event.target(), area));
        })
    };
    let (id, class, label, placeholder) = (
        props.id.clone(),
        props.class.clone(),
        props.label.clone(),
        props.placeholder.clone(),
    );
    match props.rows {
        Some(rows) => html! {
            <textarea {id} {class} rows={rows.to_string()} value={shown} {oninput} {onchange}
                aria-label={label} {placeholder} spellcheck="false" />
        },
        None => html! {
            <input {id} {class} type={props.kind.clone()} value={shown} {oninput} {onchange}
                aria-label={label} {placeholder} min={props.min.clone()} max={props.max.clone()} />
        },
    }
}

/// The text in the box an event came from.
fn text_of(target: Option<EventTarget>, area: bool) -> String {
    use wasm_bindgen::JsCast;
    match target {
        Some(t) if area => t.unchecked_into::<HtmlTextAreaElement>().value(),
        Some(t) => t.unchecked_into::<HtmlInputElement>().value(),
        None => String::new(),
    }
}
