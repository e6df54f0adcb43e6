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
expect_regions = len(sys.argv) > 3 and sys.argv[3] == "--expect-regions"
regions = 0
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
    # The boxes the image shows (predict's CSV column "boxes"): one region group each.
    shown = int(row["boxes"]) if row.get("boxes") else 0
    # The image-level group's region is the whole image, then one per box.
    scoords = [i for i in items if i.ValueType == "SCOORD"]
    whole = [0.0, 0.0, src.Columns, 0.0, src.Columns, src.Rows, 0.0, src.Rows, 0.0, 0.0]
    if not scoords or [float(v) for v in scoords[0].GraphicData] != whole:
        fail(f"{path}: the first image region is not the whole image")
    scoords = scoords[1:]
    regions += len(scoords)
    if len(scoords) != shown:
        fail(f"{path}: {len(scoords)} box regions, predict shows {shown} boxes")
    for r in scoords:
        g = [float(v) for v in r.GraphicData]
        if r.GraphicType != "POLYLINE" or len(g) != 10 or g[:2] != g[8:]:
            fail(f"{path}: region {r.GraphicType} {g} is not a closed polyline of 5 points")
        elif not (g[0] < g[2] and g[5] > g[3] and 0 <= min(g) and max(g[0::2]) <= src.Columns
                  and max(g[1::2]) <= src.Rows):
            fail(f"{path}: region {g} is not a box inside the {src.Columns} x {src.Rows} image")
        kids = list(r.get("ContentSequence", []))
        if (len(kids) != 1 or kids[0].RelationshipType != "SELECTED FROM" or kids[0].ValueType != "IMAGE"
                or kids[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID != uid):
            fail(f"{path}: region not SELECTED FROM the source image")
    nums = [i for i in items if i.ValueType == "NUM"]
    if len(nums) != 1 + shown:
        fail(f"{path}: {len(nums)} NUM items for {shown} regions")
    else:
        p = float(nums[0].MeasuredValueSequence[0].NumericValue)
        if abs(p - float(row["probability"])) > 1e-6:
            fail(f"{path}: SR probability {p} != predict's {row['probability']}")
    evals = [i.ConceptCodeSequence[0].CodeMeaning for i in items
             if i.ValueType == "CODE" and i.ConceptNameCodeSequence[0].CodeValue == "72704001"]
    want = {"fracture": "Present", "no_fracture": "Absent", "refer": "Indeterminate"}[row["decision"]]
    if evals[:1] != [want] or len(evals) != 1 + shown or any(e not in ("Present", "Indeterminate")
                                                            for e in evals[1:]):
        fail(f"{path}: qualitative evaluations {evals}, decision {row['decision']}, {shown} regions")
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

if expect_regions and regions == 0:
    fail("no image region in any SR, though this run was meant to show boxes")
print(f"check_results: {checked} DICOM inputs checked, {regions} image regions, {len(failures)} problems")
for f in failures:
    print("  " + f)
sys.exit(1 if failures or checked == 0 else 0)
