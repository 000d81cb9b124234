//! CMAF writer.
