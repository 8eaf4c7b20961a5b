//! Finding personal data in text (a response body): resident identity numbers whose check
//! digit is valid, mainland mobile numbers, and bank-card numbers that pass the Luhn check.
//! Strict on purpose, so that order numbers and timestamps are not taken for personal data.
//! [`Scanner`] works on a stream of chunks, holding back the few bytes at a chunk's end that
//! could be the start of a number continued in the next chunk.

use crate::validate::gb11643_check_digit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    ResidentId,
    Mobile,
    BankCard,
}

/// How many of each kind were found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub resident_ids: u32,
    pub mobiles: u32,
    pub bank_cards: u32,
}

impl Counts {
    pub fn total(&self) -> u32 {
        self.resident_ids + self.mobiles + self.bank_cards
    }
    fn add(&mut self, k: Kind) {
        match k {
            Kind::ResidentId => self.resident_ids += 1,
            Kind::Mobile => self.mobiles += 1,
            Kind::BankCard => self.bank_cards += 1,
        }
    }
}

/// One finding: its kind and byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// Luhn check over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d - b'0');
            if i % 2 == 1 {
                let x = v * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                v
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn classify(run: &[u8]) -> Option<Kind> {
    match run.len() {
        18 if run[..17].iter().all(u8::is_ascii_digit) => {
            let last = run[17].to_ascii_uppercase();
            let birth_year = std::str::from_utf8(&run[6..10]).ok()?.parse::<u32>().ok()?;
            let month = std::str::from_utf8(&run[10..12]).ok()?.parse::<u32>().ok()?;
            let plausible = (1900..=2100).contains(&birth_year) && (1..=12).contains(&month);
            if plausible && gb11643_check_digit(&run[..17]) == Some(last) {
                return Some(Kind::ResidentId);
            }
            luhn_valid(run).then_some(Kind::BankCard)
        }
        11 if run[0] == b'1' && (b'3'..=b'9').contains(&run[1]) && run.iter().all(u8::is_ascii_digit) => Some(Kind::Mobile),
        16 | 17 | 19 if run.iter().all(u8::is_ascii_digit) && luhn_valid(run) => Some(Kind::BankCard),
        _ => None,
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every finding in `text`. A number must stand alone (not inside a longer word or number).
pub fn find(text: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_digit() || (i > 0 && is_word(text[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && text[i].is_ascii_digit() {
            i += 1;
        }
        let mut end = i;
        if end - start == 17 && i < text.len() && (text[i] == b'X' || text[i] == b'x') {
            end += 1;
            i += 1;
        }
        if end < text.len() && is_word(text[end]) {
            // Part of a longer token: skip the rest of it.
            while i < text.len() && is_word(text[i]) {
                i += 1;
            }
            continue;
        }
        if let Some(kind) = classify(&text[start..end]) {
            out.push(Finding { kind, start, end });
        }
    }
    out
}

/// Replaces the middle of each finding with `*` in place (same length, so a `Content-Length`
/// stays right): identity numbers keep 6 + 4, mobiles 3 + 4, cards their last 4.
pub fn mask_findings(text: &mut [u8], findings: &[Finding]) {
    for f in findings {
        let (head, tail) = match f.kind {
            Kind::ResidentId => (6, 4),
            Kind::Mobile => (3, 4),
            Kind::BankCard => (0, 4),
        };
        for b in &mut text[f.start + head..f.end - tail] {
            *b = b'*';
        }
    }
}

/// Streams chunks through [`find`]: each call returns the bytes safe to send now.
#[derive(Debug, Default)]
pub struct Scanner {
    held: Vec<u8>,
    pub counts: Counts,
}

impl Scanner {
    /// Scans `chunk` (after what was held back). With `mask`, findings are masked in the
    /// returned bytes. At `end`, everything held back is returned.
    pub fn push(&mut self, chunk: &[u8], end: bool, mask: bool) -> (Vec<u8>, Vec<Finding>) {
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(chunk);
        // Hold back a trailing run that could continue in the next chunk (digits, an X after
        // 17 digits), with the byte before it, which decides whether the run stands alone.
        let keep_from = if end {
            data.len()
        } else {
            let mut k = data.len();
            while k > 0 && (data[k - 1].is_ascii_digit() || data[k - 1] == b'X' || data[k - 1] == b'x') {
                k -= 1;
            }
            if k < data.len() {
                k.saturating_sub(1)
            } else {
                k
            }
        };
        let findings: Vec<Finding> = find(&data[..keep_from]).into_iter().collect();
        for f in &findings {
            self.counts.add(f.kind);
        }
        if mask {
            mask_findings(&mut data[..keep_from], &findings);
        }
        self.held = data.split_off(keep_from);
        (data, findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(prefix17: &str) -> String {
        let c = gb11643_check_digit(prefix17.as_bytes()).unwrap();
        format!("{prefix17}{}", c as char)
    }

    #[test]
    fn finds_valid_numbers_only() {
        let good = id("11010519491231002");
        let text = format!("<td>{good}</td><td>13812345678</td><td>4111111111111111</td><td>order 20261123012345678</td>");
        let f = find(text.as_bytes());
        let kinds: Vec<Kind> = f.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, vec![Kind::ResidentId, Kind::Mobile, Kind::BankCard]);
        // A wrong check digit, a number inside a word, a 12-digit mobile lookalike: nothing.
        let wrong = format!("{}{}", &good[..17], if good.ends_with('1') { '2' } else { '1' });
        let bad = format!("{wrong} id{good} 138123456789 4111111111111112");
        assert!(find(bad.as_bytes()).is_empty(), "{:?}", find(bad.as_bytes()));
    }

    #[test]
    fn masks_in_place_keeping_length() {
        let good = id("44030419900307123");
        let mut text = format!("id={good}&m=13812345678&card=5500000000000004").into_bytes();
        let len = text.len();
        let f = find(&text);
        mask_findings(&mut text, &f);
        let s = String::from_utf8(text).unwrap();
        assert_eq!(s.len(), len);
        assert!(s.starts_with(&format!("id=440304********{}", &good[14..])), "{s}");
        assert!(s.contains("m=138****5678"), "{s}");
        assert!(s.ends_with("card=************0004"), "{s}");
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(luhn_valid(b"5500000000000004"));
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(!luhn_valid(b""));
    }

    #[test]
    fn numbers_split_across_chunks_are_found_and_masked() {
        let good = id("11010519491231002");
        let text = format!("name: 张三, id: {good}, phone: 13812345678.");
        let bytes = text.as_bytes();
        for split in 1..bytes.len() {
            let mut s = Scanner::default();
            let (mut out, _) = s.push(&bytes[..split], false, true);
            let (rest, _) = s.push(&bytes[split..], true, true);
            out.extend(rest);
            assert_eq!(out.len(), bytes.len());
            let out = String::from_utf8_lossy(&out);
            assert_eq!(s.counts, Counts { resident_ids: 1, mobiles: 1, bank_cards: 0 }, "split at {split}: {out}");
            assert!(out.contains("138****5678") && !out.contains(&good), "split at {split}: {out}");
        }
    }
}
