//! The GPU check page.

use yew::prelude::*;

use crate::components::gpu_check::GpuCheck;

/// Whether this browser's WebGPU works: the adapter and a kernel check against the CPU.
#[component]
pub(crate) fn GpuPage() -> Html {
    html! {
        <>
            <section class="panel">
                <h2>{ "The GPU path" }</h2>
                <p>{ "The model runs on the CPU engine in a web worker today; the WebGPU engine is being built. This check multiplies random matrices on this browser's GPU and compares every entry with the CPU." }</p>
            </section>
            <GpuCheck />
        </>
    }
}
