//! The registry's checks of a registration, on whatever bytes decode as a
//! `RegisterAgentRequest` (what any client can send to RegisterAgent).
//!
//! Beyond "no panic": a refusal is INVALID_ARGUMENT naming a field, as the
//! API promises, and a registration that passes passes again after an
//! encode/decode round trip (what the store does with it).

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use switchboard_proto::v1::RegisterAgentRequest;
use switchboard_registry::{Limits, RegistryError, validate_registration};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = RegisterAgentRequest::decode(data) else { return };
    let limits = Limits::default();
    match validate_registration(&request, &limits) {
        Ok(()) => {
            let stored = RegisterAgentRequest::decode(request.encode_to_vec().as_slice())
                .expect("an encoded request decodes");
            assert!(validate_registration(&stored, &limits).is_ok());
        }
        Err(RegistryError::InvalidArgument { field, message }) => {
            assert!(!field.is_empty(), "a refusal names its field: {message}");
            assert!(!message.is_empty(), "a refusal says what is wrong with {field}");
        }
        Err(other) => panic!("a validator answered something else: {other}"),
    }
});
