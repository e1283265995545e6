//! Shared helpers for the integration tests.
#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;

/// Path of a file under tests/data.
pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../macsec/tests/data")
        .join(name)
}

/// The `vectors` array of a JSON vector file in tests/data.
pub fn load_vectors(name: &str) -> Vec<Value> {
    let s = std::fs::read_to_string(data_path(name)).expect("read vector file");
    let v: Value = serde_json::from_str(&s).expect("parse vector file");
    v["vectors"].as_array().expect("vectors array").clone()
}

/// Hex field of a vector.
pub fn hexf(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap_or_else(|| panic!("field {k}"))).expect("hex")
}

/// The frame with `HEADROOM`/`TAILROOM` around it: (buffer, range).
pub fn framed(frame: &[u8]) -> (Vec<u8>, std::ops::Range<usize>) {
    let mut b = vec![0xAAu8; 64 + frame.len() + 64];
    b[64..64 + frame.len()].copy_from_slice(frame);
    (b, 64..64 + frame.len())
}
