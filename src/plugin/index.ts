// Entry points of dist/pusher.js, called from kamailio/pusher.cfg with jsdt_run("<name>").
// app_jsdt finds functions as properties of the global object, so each is assigned there by name.

import { onHelperMessage } from "./helper-messages";
import { onLinkClosed, onLinkOpen } from "./helper-link";
import {
  onAnswered,
  onCallEnded,
  onCancel,
  onInvite,
  onInviteFirstFailed,
  onParallelFailed,
  sendPushes,
} from "./invite-flow";
import { ensureDevicesLoaded } from "./device-store";
import { onDelivered } from "./call-metrics";
import { checkRegistrationToken } from "./register-token";
import { registerBeforeSave, registerDevices, repairContactHeader } from "./register-before-save";
import {
  nextHeldCall,
  onClusterMessage,
  onRegister,
  onRegisterFailed,
  tellClusterOfRegistration,
} from "./register-after-save";
import { stripPushParams } from "./strip-push-params";
import { deliverMessages, onMessage, onMessageNotSent, onMessageReply, storeMessage } from "./message-flow";
import { ensureMessagesLoaded } from "./message-store";
import { armRefresh, checkRefreshInterval, planRefresh, rearmRefreshes } from "./refresh-pushes";
import { onLoadTimerTick, onTimerTick } from "./timer-tick";

declare var globalThis: { [name: string]: unknown };

const entryPoints: { [name: string]: (code: string) => void } = {
  pusher_load_devices: ensureDevicesLoaded,
  pusher_repair_contact: repairContactHeader,
  pusher_register_before_save: registerBeforeSave,
  pusher_register_devices: registerDevices,
  pusher_on_register: onRegister,
  pusher_next_held_call: nextHeldCall,
  pusher_on_register_failed: onRegisterFailed,
  pusher_on_cluster_message: onClusterMessage,
  pusher_tell_cluster: tellClusterOfRegistration,
  pusher_check_registration_token: checkRegistrationToken,
  pusher_on_invite: onInvite,
  pusher_on_invite_first_failed: onInviteFirstFailed,
  pusher_on_parallel_failed: onParallelFailed,
  pusher_send_pushes: sendPushes,
  pusher_on_call_ended: onCallEnded,
  pusher_on_answered: onAnswered,
  pusher_on_delivered: onDelivered,
  pusher_on_cancel: onCancel,
  pusher_on_helper_message: onHelperMessage,
  pusher_on_link_open: onLinkOpen,
  pusher_on_link_closed: onLinkClosed,
  pusher_strip_push_params: stripPushParams,
  pusher_load_messages: ensureMessagesLoaded,
  pusher_on_message: onMessage,
  pusher_store_message: storeMessage,
  pusher_deliver_messages: deliverMessages,
  pusher_on_message_reply: onMessageReply,
  pusher_on_message_not_sent: onMessageNotSent,
  pusher_check_refresh_interval: checkRefreshInterval,
  pusher_plan_refresh: planRefresh,
  pusher_arm_refresh: armRefresh,
  pusher_rearm_refreshes: rearmRefreshes,
  pusher_on_timer: onTimerTick,
  pusher_on_load_timer: onLoadTimerTick,
};

for (const name in entryPoints) {
  if (Object.prototype.hasOwnProperty.call(entryPoints, name)) globalThis[name] = entryPoints[name];
}
