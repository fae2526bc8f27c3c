//! Wrapping of SOPS data keys by master keys held outside the file.

pub mod age;
