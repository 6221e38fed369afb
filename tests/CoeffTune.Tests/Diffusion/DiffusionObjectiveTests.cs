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
    public void Caption_dropout_outside_0_to_1_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DiffusionObjective(NoiseSchedule.Linear(), 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DiffusionObjective(NoiseSchedule.Linear(), -0.1));
    }
}
