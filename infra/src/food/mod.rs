//! Food recognition's adapters: the vision model (an OpenAI-compatible chat-completions API, or the embedded
//! table of sample photos) and the uploaded photos (the S3 uploads bucket, or a local folder playing it).

#[cfg(feature = "embedded")]
mod local;
#[cfg(feature = "food")]
mod remote;
#[cfg(any(feature = "food", feature = "embedded"))]
mod samples;

#[cfg(feature = "embedded")]
pub use local::LocalUploads;
#[cfg(feature = "food")]
pub use remote::{ApiKeySource, HttpRecognizer, S3Photos};
#[cfg(any(feature = "food", feature = "embedded"))]
pub use samples::{Sample, SampleRecognizer, SAMPLES};

#[cfg(any(feature = "food", feature = "embedded"))]
fn too_large(size: u64, max_bytes: u64) -> shared::Error {
    shared::Error::permanent(format!("the photo is {size} bytes; the largest accepted is {max_bytes}"))
}
