using CoeffTune.Diffusion;
using CoeffTune.Methods;
using CoeffTune.Methods.Baselines;
using CoeffTune.Models.Dit;
using CoeffTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Diffusion;

public sealed class DiffusionObjectiveTests
{
    private static CaptionedImages Set(int n, WordHashEncoder encoder, int seed = 0)
    {
        var g = new Random(seed);
        var pixels = new float[n * 64];
        var captions = new List<string>();
        for (int i = 0; i < n; i++)
        {
            // Two kinds of image: a bright left half or a bright top half, captioned so.
            bool left = i % 2 == 0;
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++)
                    pixels[i * 64 + y * 8 + x] = (left ? x < 4 : y < 4) ? 0.9f + 0.1f * (float)g.NextDouble() : 0.1f * (float)g.NextDouble();
            captions.Add(left ? "a photo of a left" : "a photo of a top");
        }
        return new CaptionedImages(pixels, 1, 8, 8, captions, encoder);
    }

    [Fact]
    public void Captions_are_encoded_once_each_with_the_empty_caption_first()
    {
        var encoder = new WordHashEncoder();
        using var set = Set(10, encoder);
        Assert.Equal(["", "a photo of a left", "a photo of a top"], set.Captions);
        Assert.Equal(1, encoder.Calls);
        using var batch = set.MakeBatch([0, 1, 2], CPU);
        Assert.Equal(new long[] { 3, 1, 8, 8 }, batch.Images.shape);
        Assert.Equal(new long[] { 3, 7, 12 }, batch.Context.shape);       // [CLS] a photo of a left [SEP]
        Assert.Equal(new long[] { 1, 7, 12 }, batch.EmptyContext.shape);
        Assert.Equal(new long[] { 1, 1, 0, 0, 0, 0, 0 }, batch.EmptyMask[0].data<long>().ToArray());
        Assert.InRange(batch.Images.min().ToDouble(), -1, -0.7);        // [0, 1] scaled to [-1, 1]
    }

    [Fact]
    public void Evaluation_is_reproducible_and_loss_is_mse_on_the_noise()
    {
        using var set = Set(12, new WordHashEncoder());
        using var model = TinyDiffusion.Fresh();
        var objective = new DiffusionObjective(NoiseSchedule.Linear());
        var a = objective.Evaluate(model, set, 5, CPU);
        var b = objective.Evaluate(model, set, 5, CPU);
        Assert.Equal(a.Loss, b.Loss);
        // A fresh adaLN-Zero model predicts zero noise: the loss is the mean square of standard normal noise.
        Assert.InRange(a.Loss, 0.8, 1.2);
        Assert.Equal(12, a.Examples);
        Assert.True(objective.IsBetter(a with { Loss = a.Loss - 0.1 }, a));
    }

    [Fact]
    public void Training_a_few_steps_lowers_the_evaluation_loss()
    {
        using var tmp = new TempDir();
        using var train = Set(64, new WordHashEncoder(), seed: 1);
        using var validation = Set(16, new WordHashEncoder(), seed: 2);
        torch.manual_seed(0);
        using var model = new DiffusionTransformer(TinyDiffusion.Shape);
        var objective = new DiffusionObjective(NoiseSchedule.Linear(), captionDropout: 0.2);
        double before = objective.Evaluate(model, validation, 16, CPU).Loss;
        var peft = PeftModel.Wrap(model, DiffusionTransformer.Architecture, [], new FullConfig());
        var result = new Trainer<DiffusionBatch>(peft, objective, new TrainOptions { Epochs = 15, BatchSize = 16, LearningRate = 3e-3, WeightDecay = 0 })
            .Fit(train, validation, tmp.Path);
        Assert.True(result.BestValidation.Loss < before - 0.2, $"validation loss {before:F3} -> {result.BestValidation.Loss:F3}");
    }

    [Fact]
    public void Min_snr_weight_is_min_of_snr_and_gamma_over_snr()
    {
        var schedule = NoiseSchedule.Linear();
        var objective = new DiffusionObjective(schedule, minSnrGamma: 5);
        using var t = tensor(new long[] { 0, 100, 999 });
        var w = objective.Weight(t, ScalarType.Float64).data<double>().ToArray();
        // t = 0: alpha-bar = 1 - 1e-4, SNR = 9999, weight 5 / 9999.
        Assert.Equal(5.0 / 9999.0, w[0], 1e-12);
        // t = 100: alpha-bar = prod_{s <= 100} (1 - beta_s), computed here from the betas' closed form.
        double a = 1;
        for (int s = 0; s <= 100; s++) a *= 1 - (1e-4 + (0.02 - 1e-4) * s / 999);
        Assert.Equal(Math.Min(a / (1 - a), 5) / (a / (1 - a)), w[1], 1e-9);
        Assert.True(a / (1 - a) > 5, "t = 100 has an SNR above gamma, so its weight is below 1");
        // t = 999: SNR far below 5, weight 1.
        Assert.Equal(1.0, w[2], 12);
        Assert.All(new DiffusionObjective(schedule).Weight(t, ScalarType.Float64).data<double>().ToArray(), x => Assert.Equal(1.0, x));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DiffusionObjective(schedule, minSnrGamma: 0));
    }

    [Fact]
    public void Min_snr_loss_is_the_weighted_mean_of_each_images_noise_mse()
    {
        using var set = Set(6, new WordHashEncoder());
        using var model = TinyDiffusion.Trained();
        var schedule = NoiseSchedule.Linear();
        var objective = new DiffusionObjective(schedule, captionDropout: 0, minSnrGamma: 5);
        using var batch = set.MakeBatch([0, 1, 2, 3, 4, 5], CPU);
        torch.manual_seed(11);
        double loss = objective.Loss(model, batch).ToDouble();
        // The same draws by hand: timesteps, then noise; each image's MSE weighted by min(SNR, 5) / SNR.
        torch.manual_seed(11);
        var t = randint(0, schedule.Steps, new long[] { 6 }, ScalarType.Int64).data<long>().ToArray();
        var noise = randn(batch.Images.shape, ScalarType.Float32);
        using var tt = tensor(t);
        var prediction = model.forward(schedule.AddNoise(batch.Images, noise, tt), tt, batch.Context, batch.ContextMask);
        double expected = 0;
        for (int i = 0; i < 6; i++)
        {
            double a = schedule.AlphaBars[(int)t[i]], snr = a / (1 - a);
            double mse = (prediction[i] - noise[i]).square().mean().ToDouble();
            expected += Math.Min(snr, 5) / snr * mse / 6;
        }
        Assert.Equal(expected, loss, 1e-6);
    }

    [Fact]
    public void Caption_dropout_outside_0_to_1_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DiffusionObjective(NoiseSchedule.Linear(), 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DiffusionObjective(NoiseSchedule.Linear(), -0.1));
    }
}
