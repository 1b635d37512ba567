/**
 * spikeir: train energy-efficient spiking neural networks for image
 * restoration by distilling them from ANN teachers, on any GPU that Vulkan,
 * Metal or DX12 can drive.
 *
 * @packageDocumentation
 */
export { Tensor, scope, initDevice, info, memory, synchronize } from './src/tensor'
export type { DeviceInfo, DeviceOptions, MemoryInfo, RandOptions, RandnOptions } from './src/tensor'
