//! The start page.

use yew::prelude::*;

use crate::components::gpu_check::GpuCheck;

/// The start page: what Glassbox is, and whether this browser's GPU can run it.
#[component]
pub(crate) fn Home() -> Html {
    html! {
        <>
            <section class="panel">
                <h2>{ "What this is" }</h2>
                <p>
                    { "Glassbox runs a small language model and its feature dictionary right here, on this computer's GPU through WebGPU, with no server. " }
                    { "This first page checks that the GPU path works: it multiplies random matrices on the GPU and compares every entry with the same product computed on the CPU." }
                </p>
            </section>
            <GpuCheck />
        </>
    }
}
