-- Argo CD health of an isindir.github.com SopsSecret, from the status gitseal-controller
-- writes: `observedGeneration`, the `Ready` condition (False with why: decryption error,
-- Secret not owned, suspended), `MacVerified`, and sops-secrets-operator's `message`
-- (the only field that operator writes, used when there is no Ready condition).
-- Plain Lua 5.1, as Argo CD runs it.
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

local function join(first, second)
  if first ~= nil and second ~= nil then
    return first .. ": " .. second
  end
  return first or second
end

local status = obj.status
local generation = obj.metadata and obj.metadata.generation
local suspended = obj.spec ~= nil and obj.spec.suspend == true
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for gitseal-controller to decrypt the SopsSecret"
  return hs
end
if generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for gitseal-controller to decrypt generation " .. tostring(generation)
  return hs
end
local ready = find_condition(status, "Ready")
if ready == nil then
  if status.message == nil then
    hs.status = "Progressing"
    hs.message = "Waiting for gitseal-controller to decrypt the SopsSecret"
  elseif status.message == "Healthy" then
    hs.status = "Healthy"
    hs.message = status.message
  else
    hs.status = "Degraded"
    hs.message = status.message
  end
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = status.message or "Secrets decrypted"
  local mac = find_condition(status, "MacVerified")
  if mac ~= nil and mac.status == "False" then
    hs.message = join("Secrets written, MAC not verified", mac.message)
  end
elseif ready.status == "False" and suspended then
  hs.status = "Suspended"
  hs.message = join(status.message, ready.message) or "Reconciliation is suspended"
elseif ready.status == "False" then
  hs.status = "Degraded"
  hs.message = join(status.message, ready.message) or "The SopsSecret could not be decrypted"
else
  hs.status = "Progressing"
  hs.message = join(status.message, ready.message)
    or "Waiting for gitseal-controller to decrypt the SopsSecret"
end
return hs
