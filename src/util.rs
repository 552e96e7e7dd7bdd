//! Small helpers with no better home: UTC timestamps in ISO-8601, durations like `30s`/`7d`,
//! random ids, hex, and a constant-time comparison.

use rand::RngCore;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Current time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn now_iso() -> String {
    iso_from_ms(now_ms())
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's civil_from_days.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ`. Written digit by digit into one 24-byte string (it
/// runs on every call: a spend record's start and end; `core::fmt` cost ~3x as much); a year
/// outside 0..=9999 goes through `format!`, as before.
pub fn iso_from_ms(ms: i64) -> String {
    match iso_bytes(ms) {
        Some(b) => std::str::from_utf8(&b)
            .map(str::to_owned)
            .unwrap_or_default(),
        None => iso_fmt(ms),
    }
}

/// `iso_from_ms` through `format!`: any year (the digit writer covers 0..=9999).
fn iso_fmt(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// `iso_from_ms`'s text as bytes, without allocating; `None` for a year outside 0..=9999.
pub fn iso_bytes(ms: i64) -> Option<[u8; 24]> {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut b[0..4], y as u32);
    put_digits(&mut b[5..7], m);
    put_digits(&mut b[8..10], d);
    put_digits(&mut b[11..13], (sod / 3600) as u32);
    put_digits(&mut b[14..16], ((sod / 60) % 60) as u32);
    put_digits(&mut b[17..19], (sod % 60) as u32);
    put_digits(&mut b[20..23], milli as u32);
    Some(b)
}

/// `n`'s last `out.len()` decimal digits, zero-padded, into `out`.
fn put_digits(out: &mut [u8], mut n: u32) {
    for c in out.iter_mut().rev() {
        *c = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `secs` from now as stored ISO-8601 text (saturating; `parse_duration` caps durations).
pub fn iso_in_secs(secs: i64) -> String {
    iso_from_ms(now_ms().saturating_add(secs.saturating_mul(1000)))
}

/// Parses the timestamps we write (and the common ISO-8601 forms LiteLLM writes:
/// optional fraction, `Z`, `+00:00` or no zone, which is taken as UTC).
pub fn ms_from_iso(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut milli = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
        rest = &frac[digits.len()..];
        let mut d3: String = digits.chars().take(3).collect();
        while d3.len() < 3 {
            d3.push('0');
        }
        milli = d3.parse().ok()?;
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        z if (z.starts_with('+') || z.starts_with('-')) && z.len() == 6 => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let hh: i64 = z.get(1..3)?.parse().ok()?;
            let mm: i64 = z.get(4..6)?.parse().ok()?;
            sign * (hh * 60 + mm)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    Some(secs * 1000 + milli)
}

/// Parses LiteLLM durations: `30s`, `15m`, `1h`, `7d`, `2w`, `1mo` (30 days). Returns seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    if n <= 0 {
        return None;
    }
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "mo" => 30 * 86_400,
        _ => return None,
    };
    // Beyond 100 years a duration is a typo, and far-future timestamps stop being 4-digit years.
    n.checked_mul(mult).filter(|s| *s <= 100 * 366 * 86_400)
}

pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// A random UUID v4, the id format LiteLLM uses for orgs, teams, users and budgets.
pub fn uuid4() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_text(&b)
}

/// A UUID v7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Request ids use it:
/// still a UUID to every client, but ids made close in time sort close together, so the spend
/// log's unique index on `request_id` grows at its right edge (one page per batch of calls
/// instead of one random page per call).
pub fn uuid7() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    let ms = (now_ms().max(0) as u64).to_be_bytes();
    b[..6].copy_from_slice(&ms[2..]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_text(&b)
}

/// The 8-4-4-4-12 hex form, written straight into one 36-byte string.
fn uuid_text(b: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip() {
        for ms in [0, 1_700_000_000_123, 951_782_400_000, 4_102_444_799_999] {
            let s = iso_from_ms(ms);
            assert_eq!(ms_from_iso(&s), Some(ms), "{s}");
        }
        assert_eq!(iso_from_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            ms_from_iso("2000-02-29T01:00:00+01:00"),
            Some(951_782_400_000)
        );
        assert_eq!(ms_from_iso("2000-02-29 00:00:00.5"), Some(951_782_400_500));
        assert_eq!(ms_from_iso("garbage"), None);
    }

    /// The digit-by-digit writers give what `format!` gave, byte for byte.
    #[test]
    fn writers_match_format() {
        let mut ms: i64 = -62_167_219_200_001; // 0000-01-01 minus 1 ms: a year below 0
        while ms < 253_402_300_800_000 + 86_400_000 {
            assert_eq!(iso_from_ms(ms), iso_fmt(ms), "{ms}");
            ms += 7_777_777_777; // ~90 days and odd hours, minutes, seconds, millis
        }
        for ms in [0, -1, 253_402_300_799_999, 253_402_300_800_000, now_ms()] {
            assert_eq!(iso_from_ms(ms), iso_fmt(ms), "{ms}");
        }
        for b in [
            [0u8; 16],
            [0xff; 16],
            std::array::from_fn(|i| (i * 17) as u8),
        ] {
            let h = hex(&b);
            let want = format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            );
            assert_eq!(uuid_text(&b), want);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30));
        assert_eq!(parse_duration("15m"), Some(900));
        assert_eq!(parse_duration("1h"), Some(3600));
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("1mo"), Some(2_592_000));
        assert_eq!(parse_duration("0d"), None);
        assert_eq!(parse_duration("d"), None);
        assert_eq!(parse_duration("5y"), None);
        assert_eq!(parse_duration("-5d"), None);
        assert_eq!(parse_duration("9223372036854775s"), None);
        assert_eq!(parse_duration("3000000d"), None);
        assert_eq!(parse_duration("36500d"), Some(36500 * 86_400));
    }

    #[test]
    fn uuid_shape() {
        let u = uuid4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(uuid4(), u);
        let a = uuid7();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = uuid7();
        assert_eq!((a.len(), &a[14..15], &b[14..15]), (36, "7", "7"));
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert!(a < b, "v7 ids sort by time: {a} {b}");
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"sk-abc", b"sk-abc"));
        assert!(!ct_eq(b"sk-abc", b"sk-abd"));
        assert!(!ct_eq(b"sk-abc", b"sk-ab"));
    }
}
