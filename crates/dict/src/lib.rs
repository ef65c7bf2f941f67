//! Feature dictionaries (sparse autoencoders and transcoders) in the SAELens layout.
//!
//! Its contents arrive with the default-pack issue.
