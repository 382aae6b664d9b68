//! Builders for the compares and operations of a transaction, so callers
//! write `ops::put(key, value)` instead of nesting generated oneofs.

use crate::pb::{
    self, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, compare, request_op,
};

/// Holds when `key`'s last modification was at `revision` (0: the key does
/// not exist). The compare-and-swap of one record.
pub fn mod_revision_is(key: impl Into<Vec<u8>>, revision: i64) -> Compare {
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Mod as i32,
        key: key.into(),
        target_union: Some(compare::TargetUnion::ModRevision(revision)),
    }
}

/// Holds when `key`'s value is exactly `value` (a missing key holds no
/// value, so this fails for it).
pub fn value_is(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Compare {
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Value as i32,
        key: key.into(),
        target_union: Some(compare::TargetUnion::Value(value.into())),
    }
}

/// Holds when `key` does not exist (its creation revision is 0).
pub fn absent(key: impl Into<Vec<u8>>) -> Compare {
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Create as i32,
        key: key.into(),
        target_union: Some(compare::TargetUnion::CreateRevision(0)),
    }
}

/// Writes `key` with no lease.
pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> RequestOp {
    put_with_lease(key, value, 0)
}

/// Writes `key` attached to `lease` (0: none).
pub fn put_with_lease(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, lease: i64) -> RequestOp {
    op(request_op::Request::RequestPut(PutRequest { key: key.into(), value: value.into(), lease }))
}

/// Deletes `key`.
pub fn delete(key: impl Into<Vec<u8>>) -> RequestOp {
    delete_range(key, Vec::new())
}

/// Deletes `[key, range_end)`.
pub fn delete_range(key: impl Into<Vec<u8>>, range_end: impl Into<Vec<u8>>) -> RequestOp {
    op(request_op::Request::RequestDeleteRange(DeleteRangeRequest {
        key: key.into(),
        range_end: range_end.into(),
    }))
}

/// Reads `key`.
pub fn get(key: impl Into<Vec<u8>>) -> RequestOp {
    op(request_op::Request::RequestRange(RangeRequest {
        key: key.into(),
        ..RangeRequest::default()
    }))
}

fn op(request: request_op::Request) -> RequestOp {
    pb::RequestOp { request: Some(request) }
}
