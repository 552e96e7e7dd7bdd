//! The spend journal's record payloads (issue 17): version 2 files hold a compact binary record
//! (strings as u32 LE length + UTF-8 bytes, an absent optional string as length `u32::MAX`,
//! counts as u64 LE, the spend as f64 LE bits), a fifth of the cost of the JSON of version 1
//! on the call's thread. Version 1 files (JSON payloads, as an older litegate left them) still
//! replay.

use super::spend::SpendRecord;

/// The version new files are written in.
pub(super) const VERSION: u32 = 2;
/// The version whose payloads are JSON.
pub(super) const VERSION_JSON: u32 = 1;

const NONE: u32 = u32::MAX;

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_opt(buf: &mut Vec<u8>, s: &Option<String>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.extend_from_slice(&NONE.to_le_bytes()),
    }
}

/// Appends `r`'s version-2 payload to `buf`.
pub(super) fn encode(buf: &mut Vec<u8>, r: &SpendRecord) {
    put_str(buf, &r.request_id);
    for o in [
        &r.token,
        &r.team_id,
        &r.organization_id,
        &r.user_id,
        &r.key_alias,
        &r.team_alias,
        &r.end_user,
    ] {
        put_opt(buf, o);
    }
    for s in [&r.model, &r.call_type] {
        put_str(buf, s);
    }
    for n in [
        r.prompt_tokens,
        r.completion_tokens,
        r.cache_read_tokens,
        r.cache_write_tokens,
    ] {
        buf.extend_from_slice(&n.to_le_bytes());
    }
    buf.extend_from_slice(&r.spend.to_bits().to_le_bytes());
    for s in [&r.start_time, &r.end_time, &r.status] {
        put_str(buf, s);
    }
}

/// Reads a payload front to back; every read is bounds-checked (`None`: garbled).
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn u32(&mut self) -> Option<u32> {
        let mut w = [0u8; 4];
        w.copy_from_slice(self.take(4)?);
        Some(u32::from_le_bytes(w))
    }

    fn u64(&mut self) -> Option<u64> {
        let mut w = [0u8; 8];
        w.copy_from_slice(self.take(8)?);
        Some(u64::from_le_bytes(w))
    }

    fn string(&mut self, len: u32) -> Option<String> {
        let b = self.take(len as usize)?;
        std::str::from_utf8(b).ok().map(str::to_string)
    }

    fn str(&mut self) -> Option<String> {
        let len = self.u32()?;
        self.string(len)
    }

    fn opt(&mut self) -> Option<Option<String>> {
        match self.u32()? {
            NONE => Some(None),
            len => self.string(len).map(Some),
        }
    }
}

/// A version-2 payload back into its record (`None`: garbled or trailing bytes).
pub(super) fn decode(b: &[u8]) -> Option<SpendRecord> {
    let mut r = Reader(b);
    let rec = SpendRecord {
        request_id: r.str()?,
        token: r.opt()?,
        team_id: r.opt()?,
        organization_id: r.opt()?,
        user_id: r.opt()?,
        key_alias: r.opt()?,
        team_alias: r.opt()?,
        end_user: r.opt()?,
        model: r.str()?,
        call_type: r.str()?,
        prompt_tokens: r.u64()?,
        completion_tokens: r.u64()?,
        cache_read_tokens: r.u64()?,
        cache_write_tokens: r.u64()?,
        spend: f64::from_bits(r.u64()?),
        start_time: r.str()?,
        end_time: r.str()?,
        status: r.str()?,
    };
    r.0.is_empty().then_some(rec)
}

/// A payload of a file of `version` (`None`: garbled, or a version this litegate cannot read).
pub(super) fn decode_version(version: u32, b: &[u8]) -> Option<SpendRecord> {
    match version {
        VERSION => decode(b),
        VERSION_JSON => serde_json::from_slice(b).ok(),
        _ => None,
    }
}
