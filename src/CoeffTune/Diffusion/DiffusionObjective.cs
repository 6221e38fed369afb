using CoeffTune.Models.Dit;
using CoeffTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Diffusion;

/// <summary>
/// One batch of captioned images for diffusion training: images in [-1, 1] (B, C, H, W), their captions' token
/// states and mask (B, L, D) and (B, L), and the empty caption's (1, L, D) and (1, L), padded to the same L, which
/// stand in for a caption that is dropped.
/// </summary>
public sealed record DiffusionBatch(Tensor Images, Tensor Context, Tensor ContextMask, Tensor EmptyContext, Tensor EmptyMask) : IDisposable
{
    public long Size => Images.shape[0];

    public void Dispose()
    {
        Images.Dispose();
        Context.Dispose();
        ContextMask.Dispose();
        EmptyContext.Dispose();
        EmptyMask.Dispose();
    }
}

/// <summary>
/// The epsilon-prediction objective of DDPM (Ho et al., Eq. 14, the "simple" loss): a timestep t uniform in 0..T-1
/// and Gaussian noise per image, x_t from the closed form, and the mean squared error between the model's
/// prediction and the noise. Each caption is replaced by the empty caption with probability
/// <see cref="CaptionDropout"/>, so one model learns the conditional and unconditional predictions that
/// classifier-free guidance combines. Randomness comes from torch's generator, which the trainer seeds per step.
/// Evaluation draws its timesteps and noise from a generator of its own with a fixed seed and drops no caption, so
/// every evaluation of the same model on the same set gives the same loss; the best epoch has the lowest.
/// <para>
/// With <see cref="MinSnrGamma"/> set, each image's squared error is weighted by min(SNR_t, gamma) / SNR_t, where
/// SNR_t = alpha-bar_t / (1 - alpha-bar_t) (Hang et al., "Efficient Diffusion Training via Min-SNR Weighting", the
/// weight for epsilon prediction): timesteps with little noise, whose noise is nearly unidentifiable and whose
/// gradients conflict with the noisier ones, count less. Evaluation stays the plain noise MSE, so models trained
/// either way are compared on one scale.
/// </para>
/// </summary>
public sealed class DiffusionObjective(NoiseSchedule schedule, double captionDropout = 0.1, double? minSnrGamma = null) : ITrainingObjective<DiffusionBatch>
{
    public const long EvaluationSeed = 20_251_129;

    public NoiseSchedule Schedule { get; } = schedule;
    public double CaptionDropout { get; } = captionDropout is >= 0 and < 1 ? captionDropout
        : throw new ArgumentOutOfRangeException(nameof(captionDropout), captionDropout, "caption dropout must be in [0, 1)");

    /// <summary>gamma of the min-SNR loss weight, or null for the unweighted loss.</summary>
    public double? MinSnrGamma { get; } = minSnrGamma is null or > 0 ? minSnrGamma
        : throw new ArgumentOutOfRangeException(nameof(minSnrGamma), minSnrGamma, "the min-SNR gamma must be positive");

    public string SelectionMetric => "mse";

    /// <summary>The loss weight of each timestep in <paramref name="t"/>: min(SNR_t, gamma) / SNR_t, or 1 without <see cref="MinSnrGamma"/>.</summary>
    public Tensor Weight(Tensor t, ScalarType dtype)
    {
        if (MinSnrGamma is not { } gamma) return ones(t.shape, dtype, t.device);
        using var scope = NewDisposeScope();
        var a = Schedule.AlphaBar(t, ScalarType.Float64);
        var snr = a / (1 - a);
        return (snr.clamp_max(gamma) / snr).to_type(dtype).MoveToOuterDisposeScope();
    }

    public bool IsBetter(Evaluation candidate, Evaluation best) => candidate.Loss < best.Loss;

    public Tensor Loss(nn.Module model, DiffusionBatch batch)
    {
        var dit = Dit(model);
        long b = batch.Size;
        var device = batch.Images.device;
        var t = randint(0, Schedule.Steps, new long[] { b }, ScalarType.Int64).to(device);
        var noise = randn(batch.Images.shape, ScalarType.Float32).to(batch.Images.dtype).to(device);
        var (context, mask) = (batch.Context, batch.ContextMask);
        if (CaptionDropout > 0)
        {
            var drop = rand(new long[] { b }).lt(CaptionDropout).to(device);
            context = where(drop.view(b, 1, 1), batch.EmptyContext.expand_as(context), context);
            mask = where(drop.view(b, 1), batch.EmptyMask.expand_as(mask), mask);
        }
        var prediction = dit.forward(Schedule.AddNoise(batch.Images, noise, t), t, context, mask);
        if (MinSnrGamma is null) return nn.functional.mse_loss(prediction, noise);
        var perImage = (prediction - noise).square().flatten(1).mean(new long[] { 1 });
        return (perImage * Weight(t, perImage.dtype)).mean();
    }

    public Evaluation Evaluate(nn.Module model, IBatchSource<DiffusionBatch> set, int batchSize, Device device)
    {
        var dit = Dit(model);
        bool wasTraining = dit.training;
        dit.eval();
        using var _ = no_grad();
        var generator = new Generator(unchecked((ulong)EvaluationSeed));
        double sum = 0;
        for (int start = 0; start < set.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var idx = Enumerable.Range(start, Math.Min(batchSize, set.Count - start)).ToArray();
            using var batch = set.MakeBatch(idx, device);
            var t = randint(0, Schedule.Steps, new long[] { idx.Length }, ScalarType.Int64, generator: generator).to(device);
            var noise = randn(batch.Images.shape, ScalarType.Float32, generator: generator).to(batch.Images.dtype).to(device);
            var prediction = dit.forward(Schedule.AddNoise(batch.Images, noise, t), t, batch.Context, batch.ContextMask);
            sum += nn.functional.mse_loss(prediction, noise, reduction: nn.Reduction.Sum).ToDouble() / (noise.numel() / idx.Length);
        }
        dit.train(wasTraining);
        double mse = set.Count == 0 ? 0 : sum / set.Count;
        return new Evaluation(0, mse, set.Count) { Metrics = new Dictionary<string, double> { ["mse"] = mse } };
    }

    private static DiffusionTransformer Dit(nn.Module model) => model as DiffusionTransformer
        ?? throw new ArgumentException($"the diffusion objective trains a {nameof(DiffusionTransformer)}, not a {model.GetType().Name}");
}
