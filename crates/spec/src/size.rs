//! Byte sizes as MariaDB writes them: `134217728`, `128M`, `1G`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn mib(n: u64) -> ByteSize {
        ByteSize(n * 1024 * 1024)
    }

    /// Accepts a plain number of bytes or a number with a K, M or G suffix.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let (digits, multiplier) = match text.char_indices().last() {
            Some((index, suffix))
                if suffix.is_ascii_alphabetic()
                    && !text[..index].is_empty()
                    && text[..index].chars().all(|c| c.is_ascii_digit()) =>
            {
                let multiplier = match suffix.to_ascii_uppercase() {
                    'K' => 1u64 << 10,
                    'M' => 1 << 20,
                    'G' => 1 << 30,
                    _ => return Err(format!("`{text}` has an unknown unit; allowed: K, M, G")),
                };
                (&text[..index], multiplier)
            }
            _ => (text, 1),
        };
        let number: u64 = digits.parse().map_err(|_| {
            format!("`{text}` is not a size; write bytes or a number with K, M or G, like 256M")
        })?;
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("`{text}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that divides the size exactly, so rendered configs stay readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        for (unit, shift) in [("G", 30), ("M", 20), ("K", 10)] {
            if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{unit}", bytes >> shift);
            }
        }
        write!(f, "{bytes}")
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSize;

    #[test]
    fn parses_and_prints_sizes() {
        for (input, bytes, shown) in [
            ("128M", 128 << 20, "128M"),
            ("1g", 1 << 30, "1G"),
            ("1536K", 1536 << 10, "1536K"),
            ("1000", 1000, "1000"),
            ("2048M", 2 << 30, "2G"),
        ] {
            let size = ByteSize::parse(input).unwrap();
            assert_eq!(size.0, bytes, "{input}");
            assert_eq!(size.to_string(), shown, "{input}");
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        assert!(ByteSize::parse("12T").unwrap_err().contains("unknown unit"));
        assert!(ByteSize::parse("lots").unwrap_err().contains("not a size"));
        assert!(ByteSize::parse("99999999999G")
            .unwrap_err()
            .contains("too large"));
    }
}
