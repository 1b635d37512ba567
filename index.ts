/**
 * spikeir: train energy-efficient spiking neural networks for image
 * restoration by distilling them from ANN teachers, on any GPU that Vulkan,
 * Metal or DX12 can drive.
 *
 * @packageDocumentation
 */
export { Tensor, scope, noGrad, zeroGrad, clearTape, tapeLength, initDevice, info, memory, gpuCounters, probeAdapters, resetPeakMemory, synchronize } from './src/tensor'
export type {
  AdapterProbe,
  BatchNormOptions,
  Conv2dOptions,
  DeviceInfo,
  DeviceOptions,
  GpuCounters,
  MemoryInfo,
  NeuronParams,
  PoolOptions,
  RandOptions,
  RandnOptions,
} from './src/tensor'
export { readImage, writeImage, listImages, readSafetensors, writeSafetensors } from './src/io'
export type { NamedArray } from './src/io'
export { Module, parameterSeed } from './src/nn/module'
export type { ParameterInit } from './src/nn/module'
export { Activation, BatchNorm2d, Conv2d, LayerNorm2d, ModuleList, Sequential } from './src/nn/layers'
export type { BatchNormOptions as BatchNorm2dOptions, Conv2dLayerOptions } from './src/nn/layers'
export { Adam, AdamW, SGD, clipGradNorm, clipGradNormOnDevice } from './src/train/optim'
export type { AdamOptions, NamedParameter, Optimizer, SGDOptions } from './src/train/optim'
export { constantSchedule, cosineSchedule, stepSchedule } from './src/train/schedule'
export type { Schedule } from './src/train/schedule'
export { DnCNN } from './src/models/dncnn'
export type { DnCNNOptions } from './src/models/dncnn'
export { PReNet } from './src/models/prenet'
export type { PReNetOptions } from './src/models/prenet'
export { GCANet, GCAResidualBlock, ShareSepConv } from './src/models/gcanet'
export type { GCANetOptions } from './src/models/gcanet'
export { LKDNet, LKDNET_TAPS } from './src/models/lkdnet'
export type { LKDNetOptions } from './src/models/lkdnet'
export { ConvTranspose2d, InstanceNorm2d } from './src/nn/composed'
export type { ConvTranspose2dOptions } from './src/nn/composed'
export { psnr, rgbToY, ssim, type ColourSpace, type QualityOptions } from './src/metrics/quality'
export { SpikingNeuron, MultiStep, ThresholdDependentBatchNorm, directEncode, rateEncode, meanOverTime } from './src/nn/spiking'
export type { NeuronOptions } from './src/nn/spiking'
export { GateMlp, Linear, MultiDimensionalAttention } from './src/nn/attention'
export type { AttentionOptions } from './src/nn/attention'
export { overTime, profile, recordOp, recordSpikes } from './src/nn/module'
export type { OpRecord } from './src/nn/module'
export { energyReport, E_AC, E_MAC } from './src/metrics/energy'
export type { EnergyReport, LayerEnergy } from './src/metrics/energy'
export { SpikerIR, SpikingResidualBlock, SpikingUp, RefinementBlock, SPIKERIR_PRESETS, SPIKERIR_TAPS, SPIKERIR_LEVELS, GROWN_BLOCK_SCALE, STUDENT_NEURON, spikerIRConfig } from './src/models/spikerir'
export type { SpikerIRConfig, SpikerIRTap } from './src/models/spikerir'
export { HKD, HintAdapter, gammaAt, hintStatistics, parseGammaSchedule } from './src/distill/hkd'
export type { GammaSchedule, HintPair, HintSource, HintStatistics, HKDLossParts, HKDOptions } from './src/distill/hkd'
export { UNet, UNET_TAPS } from './src/models/unet'
export type { UNetOptions } from './src/models/unet'
export { buildModel, loadModel } from './src/models/load'
export type { LoadedModel, ModelSpec } from './src/models/load'
export { saveCheckpoint, loadCheckpoint, readCheckpointInfo, writeFileAtomic } from './src/train/checkpoint'
export type { CheckpointInfo } from './src/train/checkpoint'
export { trainStudent } from './src/train/distill'
export type { BatchStream, StepRecord, TrainJob, TrainSettings } from './src/train/distill'
export { EVAL_NOISE_SEED, denoisingPairs, evaluateDenoising, restore } from './src/metrics/evaluate'
export { SELF_ENSEMBLE_PASSES, selfEnsemble } from './src/metrics/ensemble'
export type { DenoisingSetOptions, EvalResult, OnImage, Restorer, RestoreOptions } from './src/metrics/evaluate'
export { autoTileSide, bytesPerPixel, tileBudgetBytes } from './src/metrics/tiles'
export { DataLoader, evalPairs } from './src/data/pipeline'
export type { Batch, DataLoaderOptions, DataSource, DeadLeavesSource, DefocusDegradation, Degradation, EvalPair, EvalPairsOptions, FolderSource, HazeDegradation, MotionBlurDegradation, PairedSource, RainDegradation, ValueRange } from './src/data/pipeline'
export { defaultRecipe, runRecipe } from './src/train/recipe'
export type { Recipe } from './src/train/recipe'
export { evaluatePairs } from './src/metrics/evaluate'
export { testPairs } from './src/metrics/evaluate'
export type { TestPairsOptions } from './src/metrics/evaluate'
export { TASKS, TASK_NAMES, BLUR_KERNELS, BLUR_KERNEL_NAMES, isBlurKernel, blurKernel, RAIN100L_SCENES_IN_CBSD432, getTask, setupTask, taskPairs, evaluateTask, folderSource, sharedRoot, defaultTestSet, defaultTrainSet, defaultTeacher, describeSetup } from './src/tasks'
export type { BlurKernel, BySetChannels, Task, TaskName, TaskOption, TaskParams, ResolvedParams, TaskSetup, TaskPairsOptions } from './src/tasks'
export type { TrainableModel } from './src/train/distill'
export { zeroInit } from './src/models/spikerir'
export { defaultStudent } from './src/cli/defaults'
