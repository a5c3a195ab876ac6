//! `grastate.dat` as the agent reads it (`galera::GraState::parse` on the file's text).
//! Any text parses or names what is wrong, without panicking; a state that parses
//! renders back to a file that parses to the same state, and its position prints and
//! parses back to itself.

#![no_main]

use galera::{GraState, Position};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The agent reads the file with `read_to_string`: it never sees invalid UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match GraState::parse(text) {
        Ok(state) => {
            let rendered = state.render();
            assert_eq!(
                GraState::parse(&rendered).as_ref(),
                Ok(&state),
                "{rendered:?} does not parse back"
            );
            if let Some(position) = state.position() {
                assert!(!position.is_empty());
                assert_eq!(Position::parse(&position.to_string()), Some(position));
            }
        }
        // The message quotes at most one line of the file.
        Err(error) => assert!(error.to_string().len() <= text.len() + 100),
    }
});
