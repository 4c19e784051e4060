//! `pkg-template/transport.js` numbers the driver's calls off the hot path as `src/ops.rs`
//! does: a call the two number differently would run the wrong method.

use trigger_chat_wasm::ops::ALL;

#[test]
fn transport_js_numbers_every_call_as_the_driver_does() {
    let js = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pkg-template/transport.js"
    ))
    .unwrap();
    let start = js
        .find("const KNOWS = ")
        .expect("the constants are declared");
    let declared = &js[start + "const ".len()..];
    let declared = &declared[..declared.find(';').unwrap()];
    let js_ops: Vec<(String, u8)> = declared
        .split(',')
        .map(|pair| {
            let (name, n) = pair.split_once('=').unwrap();
            (name.trim().to_owned(), n.trim().parse().unwrap())
        })
        .collect();
    let rust_ops: Vec<(String, u8)> = ALL.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect();
    assert_eq!(js_ops, rust_ops);
    // Numbered 0.. without gaps, so none is left unhandled by mistake.
    for (i, (_, n)) in ALL.iter().enumerate() {
        assert_eq!(usize::from(*n), i);
    }
}
