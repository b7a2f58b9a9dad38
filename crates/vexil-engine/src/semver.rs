//! SemVer 2.0 comparison without allocation.
//!
//! Lenient where users are: `1.2` reads as `1.2.0`, `1` as `1.0.0`, and a leading `v` is
//! allowed. Build metadata (`+…`) is ignored, as SemVer says.

use std::cmp::Ordering;

/// A parsed version borrowing its pre-release part from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version<'a> {
    major: u64,
    minor: u64,
    patch: u64,
    /// The pre-release identifiers, empty for a release.
    pre: &'a str,
}

impl<'a> Version<'a> {
    /// Parses a version, or returns `None` when the text is not one.
    ///
    /// One pass over the bytes of the numeric part: this runs for every `semver_*` condition
    /// an evaluation meets.
    pub fn parse(text: &'a str) -> Option<Self> {
        let b = text.as_bytes();
        let mut i = usize::from(matches!(b.first(), Some(b'v' | b'V')));
        let mut nums = [0u64; 3];
        let mut n = 0;
        let mut digits = 0;
        while let Some(&c) = b.get(i) {
            match c {
                b'0'..=b'9' => {
                    nums[n] = nums[n].checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
                    digits += 1;
                }
                b'.' => {
                    if digits == 0 || n == 2 {
                        return None;
                    }
                    n += 1;
                    digits = 0;
                }
                b'-' | b'+' => break,
                _ => return None,
            }
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        let rest = &text[i..];
        let (pre, build) = match rest.as_bytes().first() {
            None => ("", None),
            Some(b'+') => ("", Some(&rest[1..])),
            Some(_) => {
                let r = &rest[1..];
                match r.bytes().position(|c| c == b'+') {
                    Some(p) => (&r[..p], Some(&r[p + 1..])),
                    None => (r, None),
                }
            }
        };
        if rest.starts_with('-') && !valid_identifiers(pre) {
            return None;
        }
        if build.is_some_and(|bd| !valid_identifiers(bd)) {
            return None;
        }
        Some(Version {
            major: nums[0],
            minor: nums[1],
            patch: nums[2],
            pre,
        })
    }

    /// The owned form, for compiled documents.
    pub fn to_owned_version(self) -> OwnedVersion {
        OwnedVersion {
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            pre: self.pre.into(),
        }
    }
}

/// A version kept in a compiled document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Box<str>,
}

impl OwnedVersion {
    /// Borrows the version for comparison.
    pub fn as_version(&self) -> Version<'_> {
        Version {
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            pre: &self.pre,
        }
    }
}

/// `2.3.0`, `2.3.0-beta.1`: the version as it compares (a lenient `1.2` shows as `1.2.0`).
impl std::fmt::Display for OwnedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

fn valid_identifiers(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_pre(self.pre, other.pre))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// SemVer 2.0 section 11: a release is greater than any of its pre-releases; identifiers are
/// compared one by one, numeric ones numerically and below alphanumeric ones.
fn compare_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut ai = a.split('.');
    let mut bi = b.split('.');
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let xn = x.bytes().all(|c| c.is_ascii_digit());
                let yn = y.bytes().all(|c| c.is_ascii_digit());
                let ord = match (xn, yn) {
                    // Compare numerically without parsing: strip leading zeros, then the longer
                    // string is the larger number.
                    (true, true) => {
                        let x = x.trim_start_matches('0');
                        let y = y.trim_start_matches('0');
                        x.len().cmp(&y.len()).then_with(|| x.cmp(y))
                    }
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version<'_> {
        Version::parse(s).unwrap()
    }

    #[test]
    fn precedence_follows_semver() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.2.0",
            "2.3.0-beta.1",
            "2.3.0",
            "2.10.0",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn lenient_forms() {
        assert_eq!(v("1.2"), v("1.2.0"));
        assert_eq!(v("1"), v("1.0.0"));
        assert_eq!(v("v2.3.0"), v("2.3.0"));
        assert_eq!(v("1.0.0+build.5").cmp(&v("1.0.0")), Ordering::Equal);
        for bad in [
            "",
            "a.b.c",
            "1.2.3.4",
            "1..2",
            "1.2.3-",
            "1.2.3-a..b",
            "-1.2.3",
            "1.2.x",
        ] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }
}
