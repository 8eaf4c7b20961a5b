//! Any text given to the SecLang loader must give rules or a LoadError, never a panic.
#![no_main]

use govgate_waf::{Engine, EngineConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = Engine::parse_str("fuzz.conf", text, &EngineConfig::default());
});
