"""Writes files that carry identifiers in their headers, made by the libraries that make such
files in the wild, for the airlock's `identifiers` gate tests.

    python make_identifying_files.py OUT_DIR

- photo.png: a PNG whose EXIF (Pillow writes it as an eXIf chunk) has GPS tags giving where
  it was taken; plain.png: the same image without EXIF;
- scan.dcm: a DICOM file (pydicom, with the 128-byte preamble and DICM) naming its patient;
  anonymised.dcm: the same with the patient tags emptied, as a de-identifier leaves them;
- calls.vcf: a VCF with two samples' genotype columns.
"""

import sys
from pathlib import Path

from PIL import ExifTags, Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def png(out: Path) -> None:
    image = Image.new("RGB", (32, 32), (40, 120, 200))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Airlock test camera"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 26.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 39.0)
    image.save(out / "photo.png", exif=exif)
    image.save(out / "plain.png")
    # What was written is what a reader finds.
    with Image.open(out / "photo.png") as written:
        assert written.getexif().get_ifd(ExifTags.IFD.GPSInfo), "no GPS tags written"


def dicom(path: Path, name: str, patient_id: str, birth: str, sex: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = birth
    ds.PatientSex = sex
    ds.Rows = 2
    ds.Columns = 2
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(8)
    ds.save_as(path, enforce_file_format=True)


def vcf(path: Path) -> None:
    lines = [
        "##fileformat=VCFv4.2",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", "S001", "S002"]),
        "\t".join(["1", "10583", "rs58108140", "G", "A", "50", "PASS", ".", "GT", "0/1", "1/1"]),
    ]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    png(out)
    dicom(out / "scan.dcm", "Doe^Jane", "9434765919", "19800101", "F")
    dicom(out / "anonymised.dcm", "", "", "", "")
    vcf(out / "calls.vcf")


if __name__ == "__main__":
    main()
