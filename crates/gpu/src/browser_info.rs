//! What the browser tells about its WebGPU adapter beyond what wgpu passes on.
//!
//! wgpu names a browser adapter by `GPUAdapterInfo.description`, which browsers often
//! leave empty for privacy; `vendor` and `architecture` (e.g. "google", "swiftshader")
//! are usually there. We read them straight from the JS object.

use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::{AdapterPreference, AdapterSummary};

/// Replaces an empty adapter name with the browser's vendor and architecture, and notes
/// them as the driver. Leaves the summary as it is if the browser tells nothing.
pub(crate) async fn fill_in(summary: &mut AdapterSummary, preference: AdapterPreference) {
    let Ok(info) = adapter_info(preference).await else {
        return;
    };
    let field = |name: &str| {
        Reflect::get(&info, &name.into())
            .ok()
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty())
    };
    let parts: Vec<String> = ["vendor", "architecture", "device"]
        .iter()
        .filter_map(|name| field(name))
        .collect();
    if summary.name == AdapterSummary::UNNAMED && !parts.is_empty() {
        summary.name = parts.join(" ");
    }
    if summary.driver.is_empty()
        && let Some(description) = field("description")
    {
        summary.driver = description;
    }
}

async fn adapter_info(preference: AdapterPreference) -> Result<JsValue, JsValue> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into())?;
    let gpu = Reflect::get(&navigator, &"gpu".into())?;
    let request = Reflect::get(&gpu, &"requestAdapter".into())?.dyn_into::<js_sys::Function>()?;
    let options = js_sys::Object::new();
    let power = match preference {
        AdapterPreference::HighPerformance => "high-performance",
        AdapterPreference::Software => "low-power",
    };
    Reflect::set(&options, &"powerPreference".into(), &power.into())?;
    let adapter = JsFuture::from(
        request
            .call1(&gpu, &options)?
            .dyn_into::<js_sys::Promise>()?,
    )
    .await?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err(JsValue::NULL);
    }
    Reflect::get(&adapter, &"info".into())
}
