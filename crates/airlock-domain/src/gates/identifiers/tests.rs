//! The `identifiers` and `secrets` rules, positive and negative, as the seal reads a file.

use super::*;

fn gates(json: serde_json::Value) -> Vec<Gate> {
    serde_json::from_value(json).unwrap()
}

fn both() -> Vec<Gate> {
    gates(serde_json::json!([
        {"name": "ids", "kind": "identifiers", "mode": "warn"},
        {"name": "keys", "kind": "secrets", "mode": "block"}
    ]))
}

/// The rules found in `data` read as file `name`, fed in chunks of 7 bytes.
fn found(gates: &[Gate], name: &str, data: &[u8]) -> Vec<String> {
    let mut runner = GateRunner::new(gates, name).expect("a gate is on");
    for piece in data.chunks(7) {
        runner.feed(piece);
    }
    let mut rules: Vec<String> = runner
        .finish()
        .findings
        .iter()
        .filter(|f| f.gate == "ids" || f.gate == "keys")
        .map(|f| format!("{} {}", f.rule, f.location.clone().unwrap_or_default()))
        .collect();
    rules.sort();
    rules
}

#[test]
fn the_modulus_11_check_digit() {
    assert!(modulus_11_valid(&[9, 4, 3, 4, 7, 6, 5, 9, 1, 9]));
    assert!(!modulus_11_valid(&[9, 4, 3, 4, 7, 6, 5, 9, 1, 8]));
    // A remainder that would need check digit 10 is never issued.
    let ten = (0..=9u8)
        .flat_map(|a| (0..=9u8).map(move |b| [a, b, 0, 0, 0, 0, 0, 0, 1]))
        .find(|d| {
            let sum: u32 = d
                .iter()
                .enumerate()
                .map(|(i, x)| u32::from(*x) * (10 - i as u32))
                .sum();
            11 - sum % 11 == 10
        })
        .unwrap();
    for check in 0..=9 {
        let mut digits = [0u8; 10];
        digits[..9].copy_from_slice(&ten);
        digits[9] = check;
        assert!(!modulus_11_valid(&digits));
    }
}

#[test]
fn identifiers_table() {
    let g = both();
    let cases: Vec<(&str, &[u8], Vec<&str>)> = vec![
        ("NHS number, spaced", b"id,n\n943 476 5919,12\n", vec!["nhs_number line 2"]),
        ("NHS number, plain, with a date", b"id,dob\n9434765919,12/03/1980\n", vec!["date_with_identifier line 2", "nhs_number line 2"]),
        ("NHS number, dashes", b"943-476-5919\n", vec!["nhs_number line 1"]),
        ("the check digit fails", b"id\n943 476 5918\n9434765918\n", vec![]),
        ("a decimal, not an identifier", b"p\n0.9434765919\n", vec![]),
        ("part of a longer number", b"n\n194347659190\n", vec![]),
        ("all one digit passes the check but is a placeholder", b"0000000000\n", vec![]),
        ("CHI number", b"chi\n0101011237\n", vec!["chi_number line 2"]),
        ("NI number, spaced and not", b"AB 12 34 56 C\nAB123456C\n", vec!["ni_number line 1", "ni_number line 2"]),
        ("NI number with a prefix never issued", b"GB123456C\nQQ123456C\n", vec![]),
        ("e-mail", b"contact: jane.doe@example.org\n", vec!["email line 1"]),
        ("an @ that is no address", b"x @ y\n@handle\nuser@localhost\n", vec![]),
        ("postcodes", b"SW1A 1AA\nM1 1AE\nEC1A1BB\n", vec!["postcode line 1", "postcode line 2", "postcode line 3"]),
        ("postcode-like words", b"COVID19 wave 2\nA1 in range\nM1 1CV\n", vec![]),
        ("VCF samples", b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tNA001\tNA002\n", vec!["vcf_genotypes line 2"]),
        ("VCF sites only", b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n", vec![]),
        ("counts", b"region,n\nnorth,120\nsouth,45\n", vec![]),
    ];
    for (label, data, expected) in cases {
        assert_eq!(found(&g, "t.csv", data), expected, "{label}");
    }
}

#[test]
fn secrets_table() {
    let g = both();
    let cases: Vec<(&str, &str, &[u8], Vec<&str>)> = vec![
        ("private key", "id_rsa.txt", b"-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n", vec!["private_key line 1"]),
        ("public key", "id_rsa.pub.txt", b"-----BEGIN PUBLIC KEY-----\n", vec![]),
        ("AWS", "creds.txt", b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n", vec!["cloud_key line 1"]),
        ("AWS secret in an .env", ".env", b"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", vec!["password line 1"]),
        ("Azure connection string", "app.json", b"{\"conn\": \"DefaultEndpointsProtocol=https;AccountName=x;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;\"}\n", vec!["cloud_key line 1"]),
        ("SAS link", "notes.txt", b"https://a.blob.core.windows.net/c?sv=2021-08-06&se=x&sig=abcdefghijklmnopqrstuvwxyz%3D\n", vec!["cloud_key line 1"]),
        ("JWT", "log.txt", b"Authorization: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\n", vec!["bearer_token line 1"]),
        ("password in JSON", "config.json", b"{\n  \"db_password\": \"hunter2hunter2\"\n}\n", vec!["password line 2"]),
        ("password in YAML", "config.yaml", b"database:\n  password: s3cr3t-Value\n", vec!["password line 2"]),
        ("password in R", "analysis.R", b"con <- dbConnect(user = 'me', password = 'pa55word!')\n", vec!["password line 1"]),
        ("placeholders and lookups", "config.yaml", b"password: ${DB_PASSWORD}\npassword = os.getenv(\"PW\")\napi_key: <your key>\nsecret: ''\npassword: ********\n", vec![]),
        ("a word in prose is not an assignment", "README.txt", b"Keep your password safe.\n", vec![]),
        ("prose in a table is not a config", "t.csv", b"q,a\nsecret: the answer,42\n", vec![]),
    ];
    for (label, name, data, expected) in cases {
        assert_eq!(found(&g, name, data), expected, "{label}");
    }
}

#[test]
fn long_lines_binary_files_caps_and_ignored_rules() {
    let g = both();
    // An identifier across the edge of a 64 KiB window of a very long line is still seen.
    let mut long = vec![b'x'; MAX_LINE_BYTES - 5];
    long.extend_from_slice(b" 943 476 5919 ");
    long.extend(std::iter::repeat_n(b'y', MAX_LINE_BYTES));
    long.extend_from_slice(b"\nSW1A 1AA\n");
    assert_eq!(
        found(&g, "t.txt", &long),
        ["nhs_number line 1", "postcode line 2"]
    );
    // A binary file is not read as text, and says so: neither gate read it.
    let mut binary = b"\0\0\0\x01".to_vec();
    binary.extend_from_slice(b"jane.doe@example.org\n");
    assert_eq!(
        found(&g, "t.bin", &binary),
        ["uncertain whole file", "uncertain whole file"]
    );
    let checked = {
        let mut runner = GateRunner::new(&g, "t.bin").unwrap();
        runner.feed(&binary);
        runner.finish()
    };
    assert!(checked.read_by.is_empty(), "{:?}", checked.read_by);
    assert!(
        checked.findings.iter().all(|f| f.remediation.is_some()),
        "{checked:?}"
    );
    // UTF-16 text (Excel's "Unicode text") has NULs between its letters: not read either.
    let utf16: Vec<u8> = "\u{feff}name,email\nJane,jane@example.org\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_eq!(
        found(&g, "t.txt", &utf16),
        ["uncertain whole file", "uncertain whole file"]
    );
    // What an uncertain finding does is the policy's: the gate's mode, or its `uncertain`.
    let warned = gates(serde_json::json!([
        {"name": "keys", "kind": "secrets", "mode": "block", "uncertain": "warn"}
    ]));
    let mut runner = GateRunner::new(&warned, "t.bin").unwrap();
    runner.feed(&binary);
    assert_eq!(runner.finish().findings[0].mode, GateMode::Warn);
    let mut runner = GateRunner::new(&both(), "t.bin").unwrap();
    runner.feed(&binary);
    let modes: Vec<GateMode> = runner.finish().findings.iter().map(|f| f.mode).collect();
    assert_eq!(modes, [GateMode::Warn, GateMode::Block]);
    // ... and never "off": a check that did not run is not a pass.
    let off = serde_json::from_value::<Vec<Gate>>(serde_json::json!([
        {"name": "keys", "kind": "secrets", "uncertain": "off"}
    ]));
    assert!(off.is_err(), "{off:?}");
    // Twenty listed per rule, the rest counted.
    let many: String = (0..30).map(|i| format!("user{i}@example.org\n")).collect();
    let mut runner = GateRunner::new(&g, "t.txt").unwrap();
    runner.feed(many.as_bytes());
    let findings = runner.finish().findings;
    assert_eq!(findings.len(), 21);
    assert_eq!(
        findings[20].message,
        "and 10 more email finding(s) not listed"
    );
    // A gate may leave rules out.
    let lenient = gates(serde_json::json!([
        {"name": "ids", "kind": "identifiers", "mode": "warn", "ignore": ["postcode"]}
    ]));
    assert_eq!(
        found(&lenient, "t.txt", b"SW1A 1AA\njane@example.org\n"),
        ["email line 2"]
    );
    // The finding names the line, never the value.
    let mut runner = GateRunner::new(&g, "t.csv").unwrap();
    runner.feed(b"id\n943 476 5919\n");
    let f = &runner.finish().findings[0];
    assert!(!f.message.contains("943"), "{f:?}");
    assert!(f.remediation.is_some());
}

/// A minimal DICOM header: preamble, `DICM`, one file-meta element, then group 0010.
fn dicom(name: &[u8], id: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; 128];
    d.extend_from_slice(b"DICM");
    let element = |d: &mut Vec<u8>, group: u16, el: u16, vr: &[u8; 2], value: &[u8]| {
        d.extend_from_slice(&group.to_le_bytes());
        d.extend_from_slice(&el.to_le_bytes());
        d.extend_from_slice(vr);
        d.extend_from_slice(&(value.len() as u16).to_le_bytes());
        d.extend_from_slice(value);
    };
    element(&mut d, 0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1\0");
    element(&mut d, 0x0008, 0x0060, b"CS", b"CT");
    element(&mut d, 0x0010, 0x0010, b"PN", name);
    element(&mut d, 0x0010, 0x0020, b"LO", id);
    element(&mut d, 0x0028, 0x0010, b"US", &[0, 2]);
    d
}

/// A JPEG whose EXIF has a GPS directory (with a latitude when `position`).
fn jpeg_with_exif(position: bool) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    // IFD0 at 8: one entry, GPSInfo (0x8825, LONG) pointing at 26.
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x8825u16.to_le_bytes());
    tiff.extend_from_slice(&4u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&26u32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD at 26: GPSVersionID (0), and GPSLatitude (2) when a position is there.
    let tags: &[u16] = if position { &[0, 2] } else { &[0] };
    tiff.extend_from_slice(&(tags.len() as u16).to_le_bytes());
    for tag in tags {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&4u32.to_le_bytes());
        tiff.extend_from_slice(&[2, 2, 0, 0]);
    }
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xE1];
    j.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
    j.extend_from_slice(b"Exif\0\0");
    j.extend_from_slice(&tiff);
    j.extend_from_slice(&[0xFF, 0xDA, 0, 2]);
    j.extend(std::iter::repeat_n(0x55u8, 1000));
    j
}

#[test]
fn headers_dicom_and_exif() {
    let g = both();
    let found_in = |name: &str, data: &[u8]| -> Vec<(String, String)> {
        let mut runner = GateRunner::new(&g, name).unwrap();
        for piece in data.chunks(100) {
            runner.feed(piece);
        }
        runner
            .finish()
            .findings
            .iter()
            .filter(|f| f.gate == "ids")
            .map(|f| (f.rule.clone(), f.message.clone()))
            .collect()
    };
    assert_eq!(
        found_in("scan.dcm", &dicom(b"DOE^JOHN", b"12345678")),
        [(
            "dicom".to_string(),
            "a DICOM file whose header names the patient: PatientName, PatientID".to_string()
        )]
    );
    // De-identified: the tags are there but empty.
    assert!(found_in("scan.dcm", &dicom(b"  ", b"")).is_empty());
    assert_eq!(
        found_in("photo.jpg", &jpeg_with_exif(true))[0].0,
        "exif_gps"
    );
    assert!(found_in("photo.jpg", &jpeg_with_exif(false)).is_empty());
}

/// The seal reads the content gates' part of a file on a thread of its own: taken out of the
/// runner and put back, it finds what the runner finds alone, in the same order.
#[test]
fn the_content_reading_taken_apart_finds_the_same() {
    let mut policy = both();
    policy.extend(gates(serde_json::json!([
        {"name": "sdc", "kind": "disclosure", "mode": "warn"}
    ])));
    let data = b"name,n\nuser@example.org,3\n943 476 5919,12\nAKIAABCDEFGHIJKLMNOP,4\n";
    let mut whole = GateRunner::new(&policy, "t.csv").unwrap();
    let mut runner = GateRunner::new(&policy, "t.csv").unwrap();
    let mut content = runner.take_content().expect("content gates are on");
    assert!(runner.take_content().is_none(), "taken once");
    for piece in data.chunks(5) {
        whole.feed(piece);
        runner.feed(piece);
        content.feed(piece);
    }
    let whole = whole.finish();
    let apart = runner.finish_with(Some(content.finish()));
    assert_eq!(apart, whole);
    let rules: Vec<&str> = apart.findings.iter().map(|f| f.rule.as_str()).collect();
    assert!(
        rules.contains(&"email") && rules.contains(&"cloud_key") && rules.contains(&"small_count")
    );
}

/// Taken and never given back (its thread died): the content gates say they could not read
/// the file, and the report does not call it checked by them.
#[test]
fn a_content_reading_not_given_back_is_uncertain_not_a_pass() {
    let mut runner = GateRunner::new(&both(), "t.txt").unwrap();
    let _lost = runner.take_content().unwrap();
    runner.feed(b"nothing to see\n");
    let checked = runner.finish();
    let uncertain: Vec<(&str, GateMode)> = checked
        .findings
        .iter()
        .filter(|f| f.rule == UNCERTAIN)
        .map(|f| (f.gate.as_str(), f.mode))
        .collect();
    assert_eq!(
        uncertain,
        [("ids", GateMode::Warn), ("keys", GateMode::Block)]
    );
    assert!(checked.read_by.is_empty(), "{:?}", checked.read_by);
}
