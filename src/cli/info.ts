/**
 * `spikeir info`: which device spikeir runs on.
 *
 * @module
 */
import { initDevice, probeAdapters, type DeviceInfo } from '../tensor'
import type { FlagSpec, Parsed } from './args'

export const summary = 'print the backend, adapter and limits of the device'

export const flags: Record<string, FlagSpec> = {
  json: { type: 'boolean', description: 'print one JSON object' },
  device: { type: 'string', description: 'auto, gpu, cpu (native backend), lavapipe, or an adapter name' },
  adapter: { type: 'string', description: 'the same as --device' },
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`
}

export function run(args: Parsed): void {
  const adapter = args.flags['device'] ?? args.flags['adapter']
  const device: DeviceInfo = initDevice(typeof adapter === 'string' ? { adapter } : {})
  const adapters = probeAdapters()
  if (args.flags['json']) {
    console.log(JSON.stringify({ ...device, adapters }))
    return
  }
  const listed = adapters.map((a) => `${a.name} (${a.deviceType}, ${a.backend}): ${a.usable ? 'usable' : `not usable: ${a.reason}`}`)
  console.log(
    [
      `adapter        ${device.adapterName} (${device.deviceType})`,
      `backend        ${device.backend}`,
      `driver         ${device.driver} ${device.driverInfo}`.trimEnd(),
      `max binding    ${mib(device.maxStorageBindingBytes)}`,
      `max buffer     ${mib(device.maxBufferBytes)}`,
      `workgroup      ${device.maxWorkgroupSize.join('×')} (≤ ${device.maxInvocationsPerWorkgroup} invocations)`,
      `shared memory  ${device.sharedMemoryBytes} bytes`,
      `kernels        ${device.kernelVariant}`,
      `wgpu adapters  ${listed.length ? listed.join('\n               ') : 'none (no Vulkan, Metal or DX12 driver; the native CPU backend runs everything)'}`,
    ].join('\n'),
  )
}
