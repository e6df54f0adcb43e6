#!/usr/bin/python3
"""Independent check of wristssl's DICOM results with pydicom: for every DICOM input scored by
`predict --dicom-out`, the SR and the Secondary Capture exist, copy the patient and study context exactly,
reference the analysed instance, and the SR's probability equals predict's CSV.
Usage: check_results.py PREDICT_CSV RESULTS_DIR"""
import csv
import os
import re
import warnings
import sys

import pydicom

warnings.simplefilter("ignore")  # pydicom warns about the malformed UIDs of a sample

csv_path, out = sys.argv[1], sys.argv[2]
COPIED = ["SpecificCharacterSet", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
          "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID", "ReferringPhysicianName"]
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
failures = []
checked = 0


def fail(msg):
    failures.append(msg)


def walk(items):
    for item in items:
        yield item
        if "ContentSequence" in item:
            yield from walk(item.ContentSequence)


def raw(ds, keyword):
    elem = ds.data_element(keyword)
    return None if elem is None else (elem.value if isinstance(elem.value, bytes) else str(elem.value))


for row in csv.DictReader(open(csv_path)):
    path = row["path"]
    try:
        src = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        continue  # not DICOM
    if row["error"]:
        continue
    uid = src.SOPInstanceUID
    if not re.fullmatch(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*", uid) or len(uid) > 64:
        # A malformed source UID: no result may reference it, so none is written.
        if os.path.exists(os.path.join(out, uid + ".sr.dcm")):
            fail(f"{path}: results written for the invalid UID {uid}")
        continue
    checked += 1
    sr_path, sc_path = os.path.join(out, uid + ".sr.dcm"), os.path.join(out, uid + ".sc.dcm")
    if not (os.path.exists(sr_path) and os.path.exists(sc_path)):
        fail(f"{path}: results missing in {out}")
        continue
    sr, sc = pydicom.dcmread(sr_path), pydicom.dcmread(sc_path)
    for ds, kind in ((sr, "SR"), (sc, "SC")):
        for kw in COPIED:
            a, b = src.get(kw), ds.get(kw)
            if str(a if a is not None else "") != str(b if b is not None else ""):
                fail(f"{path}: {kind} {kw} {b!r} != source {a!r}")
        if ds.SeriesInstanceUID == src.get("SeriesInstanceUID"):
            fail(f"{path}: {kind} written into the source series")
        if ds.SOPInstanceUID == uid:
            fail(f"{path}: {kind} reuses the source's SOP Instance UID")
        if "ContributingEquipmentSequence" not in ds:
            fail(f"{path}: {kind} has no Contributing Equipment Sequence")
    # SR
    if sr.SOPClassUID != COMPREHENSIVE_3D_SR:
        fail(f"{path}: SR SOP class {sr.SOPClassUID}")
    if sr.ContentTemplateSequence[0].TemplateIdentifier != "1500":
        fail(f"{path}: SR root template {sr.ContentTemplateSequence[0].TemplateIdentifier}")
    if sr.VerificationFlag != "UNVERIFIED":
        fail(f"{path}: VerificationFlag {sr.VerificationFlag}")
    evidence = [s.ReferencedSOPInstanceUID
                for st in sr.CurrentRequestedProcedureEvidenceSequence
                for se in st.ReferencedSeriesSequence for s in se.ReferencedSOPSequence]
    if evidence != [uid]:
        fail(f"{path}: evidence {evidence}")
    items = list(walk(sr.ContentSequence))
    images = [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in items if i.ValueType == "IMAGE"]
    if not images or any(x != uid for x in images):
        fail(f"{path}: SR image references {images}")
    nums = [i for i in items if i.ValueType == "NUM"]
    if len(nums) != 1:
        fail(f"{path}: {len(nums)} NUM items")
    else:
        p = float(nums[0].MeasuredValueSequence[0].NumericValue)
        if abs(p - float(row["probability"])) > 1e-6:
            fail(f"{path}: SR probability {p} != predict's {row['probability']}")
    evals = [i.ConceptCodeSequence[0].CodeMeaning for i in items
             if i.ValueType == "CODE" and i.ConceptNameCodeSequence[0].CodeValue == "72704001"]
    want = {"fracture": "Present", "no_fracture": "Absent", "refer": "Indeterminate"}[row["decision"]]
    if evals != [want]:
        fail(f"{path}: qualitative evaluation {evals}, decision {row['decision']}")
    names = {i.ConceptNameCodeSequence[0].CodeMeaning: i.get("TextValue") for i in items if i.ValueType == "TEXT"}
    if not names.get("Algorithm Version", "").startswith("sha256:"):
        fail(f"{path}: algorithm version {names.get('Algorithm Version')}")
    # SC
    if sc.SOPClassUID != SECONDARY_CAPTURE:
        fail(f"{path}: SC SOP class {sc.SOPClassUID}")
    if list(sc.ImageType) != ["DERIVED", "SECONDARY"] or sc.BurnedInAnnotation != "YES":
        fail(f"{path}: SC ImageType {sc.ImageType} BurnedInAnnotation {sc.get('BurnedInAnnotation')}")
    if sc.SourceImageSequence[0].ReferencedSOPInstanceUID != uid:
        fail(f"{path}: SC source {sc.SourceImageSequence[0].ReferencedSOPInstanceUID}")
    for kw in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if kw in sc:
            fail(f"{path}: SC has {kw}")
    px = sc.pixel_array
    if px.shape != (sc.Rows, sc.Columns, 3) or px.std() == 0:
        fail(f"{path}: SC pixels {px.shape}")

print(f"check_results: {checked} DICOM inputs checked, {len(failures)} problems")
for f in failures:
    print("  " + f)
sys.exit(1 if failures or checked == 0 else 0)
