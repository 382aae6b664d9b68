//! A minimal PNG encoder for palette images: enough for the bench's plots
//! without an imaging dependency. Rows are filtered with `Sub`, so runs of
//! one colour become runs of zeros, and compressed with fixed-Huffman
//! DEFLATE using literals and distance-1 matches (run-length coding): a
//! chart of flat areas and thin lines shrinks ~20–50× that way.

/// Encodes a `width` × `height` image of palette indices (`pixels`, row by
/// row) with the RGB `palette`.
pub fn encode(width: u32, height: u32, pixels: &[u8], palette: &[[u8; 3]]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    // 8-bit depth, colour type 3 (palette), deflate, adaptive filters, no interlace.
    header.extend_from_slice(&[8, 3, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"PLTE", &palette.concat());
    let row = width as usize;
    let mut filtered = Vec::with_capacity((row + 1) * height as usize);
    for line in pixels.chunks(row.max(1)).take(height as usize) {
        filtered.push(1); // filter type Sub: each byte minus the one on its left
        let mut left = 0u8;
        for &p in line {
            filtered.push(p.wrapping_sub(left));
            left = p;
        }
    }
    chunk(&mut out, b"IDAT", &zlib(&filtered));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.put(1, 1); // BFINAL: one block
    bits.put(1, 2); // BTYPE 01: fixed Huffman codes
    let mut i = 0;
    while i < data.len() {
        let byte = data[i];
        let run = data[i..].iter().take_while(|&&b| b == byte).count();
        bits.literal(byte);
        let mut rest = run - 1;
        while rest >= 3 {
            let len = rest.min(258);
            bits.distance_one_match(len);
            rest -= len;
        }
        // A tail of 1 or 2 is too short for a match.
        for _ in 0..rest {
            bits.literal(byte);
        }
        i += run;
    }
    bits.code(256); // end of block
    let mut out = vec![0x78, 0x01];
    out.extend_from_slice(&bits.finish());
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= 65_521;
        b %= 65_521;
    }
    (b << 16) | a
}

/// Base lengths of the length codes 257..=285 and their extra bits.
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] =
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];

/// DEFLATE's bit stream: values go in least significant bit first,
/// Huffman codes most significant bit first.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    used: u32,
}

// === impl Bits ===

impl Bits {
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.used;
        self.used += count;
        while self.used >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.used -= 8;
        }
    }

    /// A Huffman code of `len` bits, most significant bit first.
    fn huffman(&mut self, code: u32, len: u32) {
        self.put(code.reverse_bits() >> (32 - len), len);
    }

    /// A literal/length symbol with the fixed code table.
    fn code(&mut self, symbol: u16) {
        let symbol = u32::from(symbol);
        match symbol {
            0..=143 => self.huffman(0x30 + symbol, 8),
            144..=255 => self.huffman(0x190 + symbol - 144, 9),
            256..=279 => self.huffman(symbol - 256, 7),
            _ => self.huffman(0xc0 + symbol - 280, 8),
        }
    }

    fn literal(&mut self, byte: u8) {
        self.code(u16::from(byte));
    }

    /// Repeats the previous byte `len` (3..=258) times.
    fn distance_one_match(&mut self, len: usize) {
        let len = len.clamp(3, 258) as u16;
        let index = LENGTH_BASE.iter().rposition(|&base| base <= len).unwrap_or(0);
        self.code(257 + index as u16);
        let extra = LENGTH_EXTRA[index];
        if extra > 0 {
            self.put(u32::from(len - LENGTH_BASE[index]), u32::from(extra));
        }
        self.huffman(0, 5); // distance code 0: distance 1, no extra bits
    }

    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_and_adler_match_their_reference_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn a_flat_image_compresses_to_a_few_bytes_per_row() {
        let pixels = vec![1u8; 400 * 300];
        let png = encode(400, 300, &pixels, &[[0, 0, 0], [255, 255, 255]]);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(png.len() < 300 * 8, "{} bytes", png.len());
    }
}
