//! Attribution graphs over transcoder features, and the interventions that check them.
//!
//! Its contents arrive with the circuits issue.
