-- Argo CD health of a bitnami.com/v1alpha1 SealedSecret, from the status gitseal-controller
-- writes (as Bitnami's controller does): `observedGeneration` and the `Synced` condition.
-- The controller writes no status with --update-status=false: the object then stays
-- Progressing. Plain Lua 5.1, as Argo CD runs it.
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

local status = obj.status
local generation = obj.metadata and obj.metadata.generation
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for gitseal-controller to unseal the SealedSecret"
  return hs
end
if generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for gitseal-controller to unseal generation " .. tostring(generation)
  return hs
end
local synced = find_condition(status, "Synced")
if synced == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for gitseal-controller to unseal the SealedSecret"
elseif synced.status == "True" then
  hs.status = "Healthy"
  hs.message = synced.message or "Secret unsealed"
elseif synced.status == "False" then
  hs.status = "Degraded"
  hs.message = synced.message or "The SealedSecret could not be unsealed"
else
  hs.status = "Progressing"
  hs.message = synced.message or "Waiting for gitseal-controller to unseal the SealedSecret"
end
return hs
