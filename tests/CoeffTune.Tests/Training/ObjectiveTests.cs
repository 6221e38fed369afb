using CoeffTune.Methods;
using CoeffTune.Methods.Lora;
using CoeffTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Training;

/// <summary>The trainer with an objective of its own: a regression with its own batch type, judged by the lower loss.</summary>
public sealed class ObjectiveTests : IDisposable
{
    private readonly TempDir temp = new();

    public void Dispose() => temp.Dispose();

    private sealed record PairBatch(Tensor X, Tensor Y) : IDisposable
    {
        public void Dispose() { X.Dispose(); Y.Dispose(); }
    }

    private sealed class Pairs(Tensor x, Tensor y) : IBatchSource<PairBatch>
    {
        public int Count => (int)x.shape[0];
        public PairBatch MakeBatch(int[] indices, Device device)
        {
            using var idx = tensor(indices.Select(i => (long)i).ToArray());
            return new PairBatch(x.index_select(0, idx).to(device), y.index_select(0, idx).to(device));
        }
    }

    /// <summary>Mean squared error; the best epoch is the one with the lowest validation loss.</summary>
    private sealed class Regression : ITrainingObjective<PairBatch>
    {
        public string SelectionMetric => "mse";
        public Tensor Loss(nn.Module model, PairBatch batch) => nn.functional.mse_loss(((nn.Module<Tensor, Tensor>)model).call(batch.X), batch.Y);
        public bool IsBetter(Evaluation candidate, Evaluation best) => best.Examples == 0 || candidate.Loss < best.Loss;
        public Evaluation Evaluate(nn.Module model, IBatchSource<PairBatch> set, int batchSize, Device device)
        {
            model.eval();
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            using var batch = set.MakeBatch(Enumerable.Range(0, set.Count).ToArray(), device);
            double mse = nn.functional.mse_loss(((nn.Module<Tensor, Tensor>)model).call(batch.X), batch.Y).ToDouble();
            return new Evaluation(-mse, mse, set.Count) { Metrics = new Dictionary<string, double> { ["mse"] = mse } };
        }
    }

    [Fact]
    public void A_regression_objective_trains_a_lora_on_a_plain_module_and_keeps_its_lowest_loss_epoch()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(4);
        // y = x W* with W* a rank-2 change of the base layer: a LoRA of rank 2 can fit it exactly.
        var net = nn.Sequential(("proj", nn.Linear(8, 8, hasBias: false)));
        var target = net.named_parameters().Single().parameter.detach().clone() + matmul(randn(8, 2), randn(2, 8)) * 0.5;
        Tensor Make(int n, int seed) { torch.manual_seed(seed); return randn(n, 8); }
        var (xt, xv) = (Make(128, 1), Make(32, 2));
        var train = new Pairs(xt, matmul(xt, target.t()));
        var val = new Pairs(xv, matmul(xv, target.t()));
        var peft = PeftModel.Wrap(net, "toy", Array.Empty<string>(), new LoraConfig(rank: 2, alpha: 2, targetModules: ["proj"]));
        var before = new Regression().Evaluate(net, val, 32, CPU).Loss;

        var result = new Trainer<PairBatch>(peft, new Regression(), new TrainOptions { Epochs = 6, BatchSize = 16, LearningRate = 0.05, WeightDecay = 0, WarmupFraction = 0 })
            .Fit(train, val, Path.Combine(temp.Path, "run"));

        var after = new Regression().Evaluate(net, val, 32, CPU).Loss;
        Assert.True(after < before / 10, $"validation MSE {before:G3} -> {after:G3}");
        // The weights kept are the lowest-loss epoch's, and the result says which.
        var lowest = result.History.MinBy(h => h.Validation.Loss)!;
        Assert.Equal(lowest.Epoch, result.BestEpoch);
        Assert.Equal(lowest.Validation.Loss, after, 6);
        Assert.Equal(lowest.Validation.Loss, result.BestValidation.Metrics["mse"], 12);
    }
}
