-- Argo CD health of an external-secrets.io ExternalSecret, from the status
-- gitseal-controller writes (ESO's shape): the `Ready` condition with its reason and
-- message, and `syncedResourceVersion` (`<generation>-<hash>` of the last synced version,
-- written on success only). Plain Lua 5.1, as Argo CD runs it.
local hs = {}

local function find_condition(status, kind)
  if status == nil or type(status.conditions) ~= "table" then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == kind then
      return condition
    end
  end
  return nil
end

local function describe(condition, fallback)
  if condition.reason ~= nil and condition.message ~= nil then
    return condition.reason .. ": " .. condition.message
  end
  return condition.message or condition.reason or fallback
end

local status = obj.status
local generation = obj.metadata and obj.metadata.generation
local ready = find_condition(status, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for gitseal-controller to sync the ExternalSecret"
  return hs
end
if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready, "The ExternalSecret could not be synced")
  return hs
end
if ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = describe(ready, "Waiting for gitseal-controller to sync the ExternalSecret")
  return hs
end
local synced = status.syncedResourceVersion
local synced_generation = nil
if type(synced) == "string" then
  synced_generation = tonumber(string.match(synced, "^(%d+)-"))
end
if generation ~= nil and synced_generation ~= nil and synced_generation ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for gitseal-controller to sync generation " .. tostring(generation)
  return hs
end
hs.status = "Healthy"
hs.message = describe(ready, "Secret synced")
return hs
