#!/usr/bin/python3
"""Wraps a grey PNG radiograph (8 or 16 bit) as a DX DICOM file with made-up patient and study context, to
try `wristssl predict --dicom-out` or `wristssl listen` on a wrist when only PNGs are at hand (the bundled
DICOM samples are not wrists). Usage: docs/png_to_dicom.py IN.png OUT.dcm [LATERALITY]"""
import sys

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

src, out = sys.argv[1], sys.argv[2]
lat = sys.argv[3] if len(sys.argv) > 3 else "L"
px = np.array(Image.open(src))
if px.ndim != 2:
    sys.exit("expected a grey image")
bits = 16 if px.dtype != np.uint8 else 8  # PIL opens 16-bit PNGs as 32-bit integers
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
meta.MediaStorageSOPInstanceUID = generate_uid()
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds = FileDataset(out, {}, file_meta=meta, preamble=b"\0" * 128)
ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Example^Wrist", "EXAMPLE-001", "", "O"
ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID, ds.ReferringPhysicianName = "20261129", "120000", "A1", "1", ""
ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = "DX", "1", "1", ""
ds.BodyPartExamined, ds.ImageLaterality, ds.Laterality = "WRIST", lat, lat
ds.PresentationIntentType, ds.ImageType, ds.PatientOrientation = "FOR PRESENTATION", ["ORIGINAL", "PRIMARY"], ["", ""]
ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
ds.Rows, ds.Columns = px.shape
ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
ds.PixelData = px.astype(np.uint16 if bits == 16 else np.uint8).tobytes()
ds.save_as(out, write_like_original=False)
print(out)
