// Which token of a device a push that must not ring goes to: a message push (an alert) and a refresh push (a
// background push) alike. Apple: an alert token only, the device's own when it registered one, else the `:remote`
// token of Linphone's two-token form; a device with only a PushKit token gets none (iOS requires every VoIP push to
// report a call to CallKit: PushKit's pushRegistry(_:didReceiveIncomingPushWith:for:completion:), Apple). FCM and
// Web Push take any push at the token they registered.

import { DeviceRecord } from "../device-record";
import { PushDevice } from "../protocol";
import { pushDeviceOf } from "./device-store";

/** The device as a message or refresh push names it, or null when it can only take a VoIP push. */
export function nonVoipPushDevice(record: DeviceRecord): PushDevice | null {
  const device = pushDeviceOf(record);
  const alertToken = device.alertToken;
  delete device.alertToken;
  if (record.provider !== "apple") return device;
  if (record.pushKind === "alert") return device;
  if (!alertToken) return null;
  device.token = alertToken;
  device.pushKind = "alert";
  return device;
}
