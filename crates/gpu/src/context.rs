//! The GPU context: one adapter, its device and queue, and what went wrong with them.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::GpuError;

/// Which adapter to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterPreference {
    /// The fastest adapter there is: a discrete GPU where one exists. What the page uses.
    HighPerformance,
    /// A software adapter (lavapipe natively, SwiftShader in Chromium): runs anywhere,
    /// so tests prefer it. Natively it must exist, or the request fails.
    Software,
}

impl AdapterPreference {
    /// The adapter for tests and benchmarks: `GLASSBOX_ADAPTER=gpu` picks
    /// [`HighPerformance`](Self::HighPerformance), anything else (or nothing)
    /// [`Software`](Self::Software). In the browser there is no environment, and the
    /// browser's own adapter is used.
    #[must_use]
    pub fn from_env() -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        if std::env::var("GLASSBOX_ADAPTER").is_ok_and(|v| v == "gpu") {
            return Self::HighPerformance;
        }
        Self::Software
    }
}

/// What a person is told about the adapter in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The adapter's name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100".
    pub name: String,
    /// The API underneath: "WebGPU", "Vulkan", "Metal", …
    pub backend: String,
    /// Discrete, integrated, virtual, CPU (software) or other.
    pub device_type: String,
    /// The driver and its version, where the platform tells.
    pub driver: String,
}

impl AdapterSummary {
    /// The name shown when the platform gives none.
    pub const UNNAMED: &'static str = "unnamed adapter";

    /// Whether the adapter is a software renderer running on the CPU (lavapipe,
    /// SwiftShader): correct, but slower than a CPU engine written for the CPU.
    #[must_use]
    pub fn is_software(&self) -> bool {
        self.device_type == "Cpu"
    }

    fn from_info(info: &wgpu::AdapterInfo) -> Self {
        let driver = [info.driver.as_str(), info.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            name: if info.name.is_empty() {
                Self::UNNAMED.to_owned()
            } else {
                info.name.clone()
            },
            backend: info.backend.to_string(),
            device_type: format!("{:?}", info.device_type),
            driver,
        }
    }
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.backend, self.device_type)?;
        if !self.driver.is_empty() {
            write!(f, ", driver {}", self.driver)?;
        }
        Ok(())
    }
}

/// One GPU device and its queue, with the adapter's description and the device's limits.
///
/// Create it once and share it: pipelines and buffers belong to its device.
#[derive(Debug)]
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: AdapterSummary,
    lost: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// Finds an adapter and opens a device on it with the adapter's own limits, so large
    /// tensors (GPT-2's 50257×768 embedding) fit where the hardware allows.
    pub async fn new(preference: AdapterPreference) -> Result<Self, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = pick_adapter(&instance, preference).await?;
        #[allow(unused_mut, reason = "the browser fills in what wgpu leaves empty")]
        let mut summary = AdapterSummary::from_info(&adapter.get_info());
        #[cfg(target_arch = "wasm32")]
        crate::browser_info::fill_in(&mut summary, preference).await;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("glassbox"),
                required_features: wgpu::Features::empty(),
                required_limits: adapter.limits(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;

        let lost = Arc::new(Mutex::new(None));
        let lost_in_callback = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = lost_in_callback.lock() {
                *slot = Some(format!("{reason:?}: {message}"));
            }
        });
        // wgpu's default handler panics on an error outside an error scope. Every
        // operation of ours runs inside scopes; anything else is only logged.
        device.on_uncaptured_error(Arc::new(|error: wgpu::Error| {
            log_uncaptured(&error.to_string());
        }));

        Ok(Self {
            device,
            queue,
            adapter: summary,
            lost,
        })
    }

    /// The adapter this context runs on.
    #[must_use]
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// The wgpu device.
    #[must_use]
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The wgpu queue.
    #[must_use]
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// `Err(DeviceLost)` once the device is gone; the caller should fall back to the CPU.
    pub fn ensure_alive(&self) -> Result<(), GpuError> {
        match self.lost.lock() {
            Ok(slot) => slot
                .as_ref()
                .map_or(Ok(()), |why| Err(GpuError::DeviceLost(why.clone()))),
            Err(_) => Err(GpuError::DeviceLost("device state poisoned".to_owned())),
        }
    }

    /// Runs `work` inside validation and out-of-memory error scopes and turns what they
    /// caught into a [`GpuError`].
    pub(crate) async fn scoped<T>(
        &self,
        work: impl FnOnce() -> Result<T, GpuError>,
    ) -> Result<T, GpuError> {
        self.ensure_alive()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let result = work();
        // Both scopes are popped before anything is awaited: another pass running
        // meanwhile (the worker answers requests concurrently) must not pop ours.
        let validation = validation.pop();
        let oom = oom.pop();
        let validation = validation.await;
        let oom = oom.await;
        if let Some(error) = oom {
            return Err(GpuError::OutOfMemory(error.to_string()));
        }
        if let Some(error) = validation {
            return Err(GpuError::Validation(error.to_string()));
        }
        self.ensure_alive()?;
        result
    }
}

async fn pick_adapter(
    instance: &wgpu::Instance,
    preference: AdapterPreference,
) -> Result<wgpu::Adapter, GpuError> {
    #[cfg(not(target_arch = "wasm32"))]
    if preference == AdapterPreference::Software {
        let adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        let names: Vec<String> = adapters
            .iter()
            .map(|a| AdapterSummary::from_info(&a.get_info()).to_string())
            .collect();
        return adapters
            .into_iter()
            .find(|a| a.get_info().device_type == wgpu::DeviceType::Cpu)
            .ok_or_else(|| {
                GpuError::NoAdapter(format!(
                    "no software adapter among [{}]; on Debian install mesa-vulkan-drivers \
                     (lavapipe), or set GLASSBOX_ADAPTER=gpu to use a hardware GPU",
                    names.join("; ")
                ))
            });
    }
    let power_preference = match preference {
        AdapterPreference::HighPerformance => wgpu::PowerPreference::HighPerformance,
        AdapterPreference::Software => wgpu::PowerPreference::LowPower,
    };
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference,
            ..Default::default()
        })
        .await
        .map_err(|e| GpuError::NoAdapter(no_adapter_hint(&e.to_string())))
}

fn no_adapter_hint(error: &str) -> String {
    if cfg!(target_arch = "wasm32") {
        format!("{error} (this browser offers no WebGPU adapter)")
    } else {
        error.to_owned()
    }
}

fn log_uncaptured(message: &str) {
    #[cfg(target_arch = "wasm32")]
    web_sys::console::warn_1(&format!("glassbox-gpu: uncaptured GPU error: {message}").into());
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("glassbox-gpu: uncaptured GPU error: {message}");
}
