-- Orthanc as the router in front of wristssl: every CR or DX radiograph that Orthanc receives is sent on to
-- the modality "wristssl" (see orthanc.json); wristssl's answers (a structured report, Modality SR, and a
-- secondary capture, Modality OT, Manufacturer "wristssl") come back into the same study and stop there.
function OnStoredInstance(instanceId, tags, metadata, origin)
   local t = ParseJson(RestApiGet('/instances/' .. instanceId .. '/simplified-tags'))
   local modality = t['Modality']
   if (modality == 'CR' or modality == 'DX') and t['Manufacturer'] ~= 'wristssl' then
      SendToModality(instanceId, 'wristssl')
   end
end
