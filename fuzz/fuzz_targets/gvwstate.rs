//! `gvwstate.dat` as the agent reads it (`galera::parse_gvwstate_my_uuid`). The UUID it
//! returns goes into `SET GLOBAL wsrep_provider_options = 'evs.evict=UUID'`, so whatever
//! the file holds, only a well-formed UUID may come out.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The agent reads the file with `read_to_string`: it never sees invalid UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(uuid) = galera::parse_gvwstate_my_uuid(text) {
        assert_eq!(uuid.len(), 36, "{uuid:?}");
        assert!(
            uuid.bytes()
                .enumerate()
                .all(|(i, b)| if [8, 13, 18, 23].contains(&i) {
                    b == b'-'
                } else {
                    b.is_ascii_hexdigit()
                }),
            "{uuid:?} is not a UUID"
        );
        assert!(text.contains(&uuid));
    }
});
