//! Certificate times: UTCTime up to 2049 and GeneralizedTime from 2050 (RFC 5280 4.1.2.5), as
//! seconds since the Unix epoch, for dates as far out as SGP.26 puts them (eUICC certificates end
//! in year 7496). Calendar crates reach those dates too (chrono, `time` with `large-dates`, the
//! `der` crate's `DateTime` up to 9999); the conversion is written here because it is two small
//! functions on top of the DER reader that already holds the exact bytes, not because a crate
//! could not do it.

use crate::tlv::{self, DerError, Tlv, tag};

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    pub fn from_unix(t: i64) -> Civil {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs / 60 % 60) as u32,
            second: (secs % 60) as u32,
        }
    }

    fn to_unix(self) -> Option<i64> {
        let valid = (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60;
        valid.then(|| {
            days_from_civil(self.year, self.month, self.day) * 86_400
                + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
        })
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Largest time a certificate can carry: 9999-12-31T23:59:59Z.
pub const MAX_TIME: i64 = 253_402_300_799;

/// Encodes a time as UTCTime (1950..=2049) or GeneralizedTime (otherwise).
pub fn encode(t: i64) -> Result<Vec<u8>, String> {
    let c = Civil::from_unix(t);
    if !(0..=9999).contains(&c.year) {
        return Err(format!(
            "year {} cannot be encoded in a certificate",
            c.year
        ));
    }
    let hms = format!(
        "{:02}{:02}{:02}{:02}{:02}Z",
        c.month, c.day, c.hour, c.minute, c.second
    );
    Ok(if (1950..2050).contains(&c.year) {
        tlv::tlv(
            tag::UTC_TIME,
            format!("{:02}{hms}", c.year % 100).as_bytes(),
        )
    } else {
        tlv::tlv(
            tag::GENERALIZED_TIME,
            format!("{:04}{hms}", c.year).as_bytes(),
        )
    })
}

/// Encodes a time as a GeneralizedTime value `YYYYMMDDHHMMSSZ` under `tag` (0x18, or the
/// context tag of an implicitly tagged field), whatever the year.
pub fn encode_generalized(t: i64, tag: u32) -> Result<Vec<u8>, String> {
    let c = Civil::from_unix(t);
    if !(0..=9999).contains(&c.year) {
        return Err(format!("year {} cannot be a GeneralizedTime", c.year));
    }
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    Ok(tlv::tlv(tag, text.as_bytes()))
}

fn digits(s: &[u8], what: &str, offset: usize) -> Result<u32, DerError> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(DerError {
            what: format!("{what}: expected digits"),
            offset,
        });
    }
    Ok(s.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0')))
}

/// Parses a DER UTCTime or GeneralizedTime (the `Z` forms RFC 5280 allows).
pub fn parse(t: &Tlv<'_>) -> Result<i64, DerError> {
    let v = t.value;
    let bad = |what: &str| DerError {
        what: what.to_string(),
        offset: t.offset,
    };
    let (year, rest) = match t.tag {
        tag::UTC_TIME if v.len() == 13 => {
            let yy = i64::from(digits(&v[..2], "UTCTime", t.offset)?);
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &v[2..])
        }
        tag::GENERALIZED_TIME if v.len() == 15 => (
            i64::from(digits(&v[..4], "GeneralizedTime", t.offset)?),
            &v[4..],
        ),
        tag::UTC_TIME | tag::GENERALIZED_TIME => {
            return Err(bad("time must be YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ"));
        }
        _ => return Err(bad("expected UTCTime or GeneralizedTime")),
    };
    if rest[10] != b'Z' {
        return Err(bad("time must end in Z"));
    }
    let f = |i: usize| digits(&rest[i..i + 2], "time", t.offset);
    Civil {
        year,
        month: f(0)?,
        day: f(2)?,
        hour: f(4)?,
        minute: f(6)?,
        second: f(8)?,
    }
    .to_unix()
    .ok_or_else(|| bad("time out of range"))
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (or a bare `YYYY-MM-DD`, meaning midnight UTC).
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid time {s:?}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<u32, String> {
        let part = b.get(r).ok_or_else(bad)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0')))
    };
    let (hour, minute, second) = match b.len() {
        10 => (0, 0, 0),
        20 if b[10] == b'T' && b[13] == b':' && b[16] == b':' && b[19] == b'Z' => {
            (num(11..13)?, num(14..16)?, num(17..19)?)
        }
        _ => return Err(bad()),
    };
    if b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    Civil {
        year: i64::from(num(0..4)?),
        month: num(5..7)?,
        day: num(8..10)?,
        hour,
        minute,
        second,
    }
    .to_unix()
    .ok_or_else(bad)
}

/// `2020-04-01T08:27:51Z`.
pub fn format(t: i64) -> String {
    let c = Civil::from_unix(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_switch_at_2050() {
        let t = parse_rfc3339("2049-12-31T23:59:59Z").expect("valid");
        assert_eq!(u32::from(encode(t).expect("enc")[0]), tag::UTC_TIME);
        assert_eq!(
            u32::from(encode(t + 1).expect("enc")[0]),
            tag::GENERALIZED_TIME
        );
        let far = parse_rfc3339("7496-01-24T09:48:58Z").expect("valid");
        let enc = encode(far).expect("enc");
        assert_eq!(&enc[2..], b"74960124094858Z");
        let back = parse(&tlv::parse_single(&enc, "t").expect("der")).expect("time");
        assert_eq!(back, far);
    }

    #[test]
    fn round_trip_civil() {
        for t in [0i64, 951_782_400, 1_585_729_671, MAX_TIME, -1] {
            assert_eq!(Civil::from_unix(t).to_unix(), Some(t));
        }
        assert_eq!(format(1_585_729_671), "2020-04-01T08:27:51Z");
        assert!(parse_rfc3339("2021-02-29").is_err());
        assert!(parse_rfc3339("2020-02-29").is_ok());
    }
}
