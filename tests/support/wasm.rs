//! Reads the import, export and custom sections of a WebAssembly binary; enough of the format
//! to check the module's ABI without a parser dependency.

/// What a module declares.
#[derive(Default)]
pub struct Sections {
    /// `(module, name)` of every imported function.
    pub imports: Vec<(String, String)>,
    pub exports: Vec<String>,
    /// `(name, payload)` of every custom section.
    pub custom: Vec<(String, Vec<u8>)>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.bytes[self.at];
        self.at += 1;
        b
    }

    fn leb(&mut self) -> u64 {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let b = self.byte();
            value |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                return value;
            }
        }
    }

    fn name(&mut self) -> String {
        let len = self.leb() as usize;
        let text = String::from_utf8(self.bytes[self.at..self.at + len].to_vec()).unwrap();
        self.at += len;
        text
    }
}

/// Reads `bytes`; panics on anything that is not a well-formed module (it is a test helper).
pub fn read_sections(bytes: &[u8]) -> Sections {
    assert_eq!(&bytes[..8], b"\0asm\x01\0\0\0", "a wasm v1 binary");
    let mut sections = Sections::default();
    let mut reader = Reader { bytes, at: 8 };
    while reader.at < bytes.len() {
        let id = reader.byte();
        let size = reader.leb() as usize;
        let end = reader.at + size;
        match id {
            0 => {
                let name = reader.name();
                sections.custom.push((name, bytes[reader.at..end].to_vec()));
            }
            2 => {
                for _ in 0..reader.leb() {
                    let module = reader.name();
                    let name = reader.name();
                    let kind = reader.byte();
                    assert_eq!(
                        kind, 0,
                        "{module}.{name}: only function imports are expected"
                    );
                    reader.leb();
                    sections.imports.push((module, name));
                }
            }
            7 => {
                for _ in 0..reader.leb() {
                    sections.exports.push(reader.name());
                    reader.byte();
                    reader.leb();
                }
            }
            _ => {}
        }
        reader.at = end;
    }
    sections
}
